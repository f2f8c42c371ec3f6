//! Roles and what each may do. The web layer asks these questions; it never compares role
//! names itself, so the permission model lives in one place.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Marketer,
    SalesManager,
    Rep,
    AccountManager,
    ReadOnly,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Marketer,
        Role::SalesManager,
        Role::Rep,
        Role::AccountManager,
        Role::ReadOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Marketer => "marketer",
            Role::SalesManager => "sales_manager",
            Role::Rep => "rep",
            Role::AccountManager => "account_manager",
            Role::ReadOnly => "read_only",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        let s = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A rep sees the leads and accounts they own; everybody else sees all of them.
    pub fn sees_only_own_book(self) -> bool {
        matches!(self, Role::Rep)
    }

    /// May send tracking events and other writes through the API.
    pub fn may_write(self) -> bool {
        !matches!(self, Role::ReadOnly)
    }

    pub fn may_administer(self) -> bool {
        matches!(self, Role::Admin)
    }

    /// May create, change and delete lead magnets and forms.
    pub fn may_manage_capture(self) -> bool {
        matches!(self, Role::Admin | Role::Marketer)
    }

    /// May merge two contacts into one and import files: changes to many records at once.
    pub fn may_change_in_bulk(self) -> bool {
        matches!(self, Role::Admin | Role::Marketer | Role::SalesManager)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_and_accept_human_spelling() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Sales Manager"), Some(Role::SalesManager));
        assert_eq!(Role::parse("read-only"), Some(Role::ReadOnly));
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn bulk_changes_and_capture_belong_to_a_few_roles() {
        let bulk: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.may_change_in_bulk())
            .collect();
        assert_eq!(bulk, [Role::Admin, Role::Marketer, Role::SalesManager]);
        let capture: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.may_manage_capture())
            .collect();
        assert_eq!(capture, [Role::Admin, Role::Marketer]);
    }

    #[test]
    fn only_reps_are_limited_to_their_book() {
        assert!(Role::Rep.sees_only_own_book());
        assert!(!Role::SalesManager.sees_only_own_book());
        assert!(!Role::ReadOnly.may_write());
    }
}
