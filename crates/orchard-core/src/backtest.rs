//! Backtesting a draft scoring rule set against the live one before publishing it (issue 4):
//! both sets score every contact as of a cutoff date from the historical log, and the report
//! says how many contacts would change band and lifecycle stage, and how well each set
//! separates the contacts that went on to win a deal after the cutoff from those that did not
//! (ROC AUC, and the conversion rate per band).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::lifecycle::{DealFact, Facts, replayed_stage};
use crate::scoring::{RuleSet, score};
use crate::stage::{Bands, LifecycleStage, Temperature};

/// One contact's scores and stages under both sets, and whether it converted after the cutoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scored {
    pub live: i64,
    pub draft: i64,
    pub live_stage: LifecycleStage,
    pub draft_stage: LifecycleStage,
    pub converted: bool,
}

/// Scores one contact under both sets as of `cutoff`, and replays its stage under each (their
/// thresholds and disqualifying rules; `lifecycle::replayed_stage`): only events and deals up
/// to then count.
pub fn score_both(
    live: &RuleSet,
    draft: &RuleSet,
    subject: &crate::rules::Subject<'_>,
    deals: &[DealFact],
    cutoff: DateTime<Utc>,
    converted: bool,
) -> Scored {
    let under = |set: &RuleSet| {
        let scored = score(
            set,
            subject.contact,
            subject.account,
            subject.events,
            cutoff,
        );
        let stage = replayed_stage(&Facts {
            stage: subject.contact.stage,
            events: subject.events,
            score_changes: &scored.changes,
            deals,
            disqualified_by: &scored.disqualified_by,
            thresholds: set.thresholds,
            now: cutoff,
        });
        (scored.score, stage)
    };
    let ((live, live_stage), (draft, draft_stage)) = (under(live), under(draft));
    Scored {
        live,
        draft,
        live_stage,
        draft_stage,
        converted,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandRow {
    pub band: &'static str,
    pub contacts: u64,
    pub converted: u64,
    /// Converted ÷ contacts, or `None` for an empty band.
    pub conversion_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetReport {
    /// Probability that a random converter outscores a random non-converter (ties count half);
    /// `None` when either group is empty.
    pub auc: Option<f64>,
    pub bands: Vec<BandRow>,
}

/// How many contacts each set puts in one lifecycle stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageRow {
    pub stage: LifecycleStage,
    pub live: u64,
    pub draft: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub contacts: u64,
    pub converted: u64,
    /// Contacts whose band differs between the two sets.
    pub band_changes: u64,
    /// Of those, how many the draft moves up (colder to hotter).
    pub moved_up: u64,
    /// Contacts whose lifecycle stage differs between the two sets.
    pub stage_changes: u64,
    /// Contacts per stage under each set, in the stages' order; stages neither set uses are
    /// left out.
    pub stages: Vec<StageRow>,
    pub live: SetReport,
    pub draft: SetReport,
}

/// ROC AUC by ranks (Mann–Whitney U), ties averaged: O(n log n).
pub fn auc(pairs: &[(i64, bool)]) -> Option<f64> {
    let pos = pairs.iter().filter(|(_, c)| *c).count() as f64;
    let neg = pairs.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    let mut sorted: Vec<(i64, bool)> = pairs.to_vec();
    sorted.sort_by_key(|(s, _)| *s);
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * sorted[i..j].iter().filter(|(_, c)| *c).count() as f64;
        i = j;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

fn rank(t: Temperature) -> u8 {
    match t {
        Temperature::Cold => 0,
        Temperature::Warm => 1,
        Temperature::Hot => 2,
    }
}

fn set_report(scores: &[(i64, bool)], bands: &Bands) -> SetReport {
    let rows = [Temperature::Hot, Temperature::Warm, Temperature::Cold]
        .into_iter()
        .map(|t| {
            let inside: Vec<&(i64, bool)> = scores
                .iter()
                .filter(|(s, _)| bands.temperature(*s) == t)
                .collect();
            let converted = inside.iter().filter(|(_, c)| *c).count() as u64;
            BandRow {
                band: t.as_str(),
                contacts: inside.len() as u64,
                converted,
                conversion_rate: (!inside.is_empty())
                    .then(|| converted as f64 / inside.len() as f64),
            }
        })
        .collect();
    SetReport {
        auc: auc(scores),
        bands: rows,
    }
}

/// The report over every contact's pair of scores.
pub fn report(scored: &[Scored], bands: &Bands) -> Report {
    let live: Vec<(i64, bool)> = scored.iter().map(|s| (s.live, s.converted)).collect();
    let draft: Vec<(i64, bool)> = scored.iter().map(|s| (s.draft, s.converted)).collect();
    let (mut band_changes, mut moved_up) = (0, 0);
    for s in scored {
        let (a, b) = (bands.temperature(s.live), bands.temperature(s.draft));
        if a != b {
            band_changes += 1;
            if rank(b) > rank(a) {
                moved_up += 1;
            }
        }
    }
    let stages = LifecycleStage::ALL
        .into_iter()
        .map(|stage| StageRow {
            stage,
            live: scored.iter().filter(|s| s.live_stage == stage).count() as u64,
            draft: scored.iter().filter(|s| s.draft_stage == stage).count() as u64,
        })
        .filter(|r| r.live + r.draft > 0)
        .collect();
    Report {
        contacts: scored.len() as u64,
        converted: scored.iter().filter(|s| s.converted).count() as u64,
        band_changes,
        moved_up,
        stage_changes: scored
            .iter()
            .filter(|s| s.live_stage != s.draft_stage)
            .count() as u64,
        stages,
        live: set_report(&live, bands),
        draft: set_report(&draft, bands),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn auc_is_one_for_a_perfect_split_and_a_half_for_ties() {
        assert_eq!(auc(&[(10, true), (5, false), (1, false)]), Some(1.0));
        assert_eq!(auc(&[(1, true), (5, false)]), Some(0.0));
        assert_eq!(auc(&[(3, true), (3, false)]), Some(0.5));
        assert_eq!(auc(&[(3, true)]), None);
        // Two converters at 10 and 2, two others at 5 and 1: 3 of 4 pairs ordered right.
        assert_eq!(
            auc(&[(10, true), (2, true), (5, false), (1, false)]),
            Some(0.75)
        );
    }

    #[test]
    fn the_report_counts_band_moves_and_conversion_per_band() {
        let bands = Bands {
            warm_from: 20,
            hot_from: 50,
        };
        use LifecycleStage::*;
        let s = |live, draft, converted, (live_stage, draft_stage)| Scored {
            live,
            draft,
            live_stage,
            draft_stage,
            converted,
        };
        let r = report(
            &[
                s(60, 60, true, (Customer, Customer)),
                s(10, 55, true, (Mql, Sql)),
                s(30, 5, false, (Mql, Subscriber)),
                s(0, 0, false, (Subscriber, Subscriber)),
            ],
            &bands,
        );
        assert_eq!(
            (r.contacts, r.converted, r.band_changes, r.moved_up),
            (4, 2, 2, 1)
        );
        assert_eq!(r.stage_changes, 2);
        let stages: Vec<_> = r
            .stages
            .iter()
            .map(|s| (s.stage, s.live, s.draft))
            .collect();
        assert_eq!(
            stages,
            [
                (Subscriber, 1, 2),
                (Mql, 2, 0),
                (Sql, 0, 1),
                (Customer, 1, 1)
            ]
        );
        assert_eq!(r.draft.bands[0].contacts, 2);
        assert_eq!(r.draft.bands[0].conversion_rate, Some(1.0));
        assert_eq!(r.draft.auc, Some(1.0));
        assert_eq!(r.live.auc, Some(0.75));
    }

    proptest! {
        /// AUC by ranks equals the pairwise definition.
        #[test]
        fn auc_matches_the_pairwise_count(pairs in proptest::collection::vec((0i64..20, any::<bool>()), 0..40)) {
            let (pos, neg): (Vec<_>, Vec<_>) = pairs.iter().partition(|(_, c)| *c);
            let expected = (!pos.is_empty() && !neg.is_empty()).then(|| {
                let mut wins = 0.0;
                for (p, _) in &pos {
                    for (n, _) in &neg {
                        wins += if p > n { 1.0 } else if p == n { 0.5 } else { 0.0 };
                    }
                }
                wins / (pos.len() * neg.len()) as f64
            });
            match (auc(&pairs), expected) {
                (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-9),
                (a, b) => prop_assert_eq!(a, b),
            }
        }
    }
}
