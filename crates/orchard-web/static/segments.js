// The segment builder's live count: while the filter is typed, ask the server how many
// contacts it holds (debounced; a question overtaken by a newer one is withdrawn, so that its
// evaluation stops) and show a sample, or the mistake with its column, and warn of event
// types, properties and custom attributes nothing has had, offering the one probably meant.
// On a large database the server answers from a sample of the contacts: the count is shown as
// an estimate with its interval, and "Count now" counts every contact.
(() => {
  const form = document.getElementById('segment-builder');
  if (!form) return;
  const filter = form.elements.filter;
  const out = form.querySelector('[data-testid="live-count"]');
  const sample = form.querySelector('[data-testid="live-sample"]');
  const warnings = form.querySelector('[data-testid="live-warnings"]');
  let timer = null;
  let asked = 0;
  let pending = null;
  const text = (tag, value, cls) => {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  };
  // Where the filter counts events of the type (`count(`, `last(`, `first(`), not in a quoted
  // text or an attribute's name. Type names are lower-case letters, digits and underscores:
  // nothing to escape.
  const renameType = (f, w) => {
    const named = new RegExp(`\\b(count|last|first)(\\s*\\(\\s*)${w.type}\\b`, 'g');
    return f.replace(named, (_, fn, open) => `${fn}${open}${w.suggestion}`);
  };
  // Where a test of the type's events names the property (`TYPE where … PROPERTY ~ …`, within
  // one pair of brackets, outside quoted texts), once per pass until none is left. Property
  // names may hold dots, the one character of theirs to escape.
  const renameProperty = (f, w) => {
    const prop = w.property.replaceAll('.', '\\.');
    const named = new RegExp(
      `(\\b${w.type}\\s+where\\s(?:[^()"]|"(?:[^"\\\\]|\\\\.)*")*?)(?<![A-Za-z0-9_.])${prop}(?![A-Za-z0-9_.])(?=\\s*(?:~|!=|<=|>=|=|<|>))`, 'g');
    for (let i = 0; i < 20; i += 1) {
      const next = f.replace(named, (_, before) => `${before}${w.suggestion}`);
      if (next === f) break;
      f = next;
    }
    return f;
  };
  // Where the filter reads the custom attribute (`custom.NAME`), outside quoted texts.
  const renameAttribute = (f, w) => {
    const name = w.attribute.replaceAll('.', '\\.');
    const named = new RegExp(`("(?:[^"\\\\]|\\\\.)*")|\\bcustom\\.${name}(?![A-Za-z0-9_.])`, 'g');
    return f.replace(named, (all, quoted) => quoted ?? `custom.${w.suggestion}`);
  };
  async function ask() {
    const mine = ++asked;
    const body = new URLSearchParams({ csrf: form.elements.csrf.value, filter: filter.value });
    if (!filter.value.trim()) {
      out.replaceChildren(); sample.replaceChildren(); warnings.replaceChildren();
      return;
    }
    out.replaceChildren(text('span', 'counting…', 'muted'));
    if (pending) pending.abort();
    pending = new AbortController();
    let answer;
    try {
      const r = await fetch('/segments/preview', { method: 'POST', body, signal: pending.signal });
      answer = await r.json();
    } catch (e) {
      if (mine !== asked) return;
      answer = { error: 'Orchard did not answer; try again.' };
    }
    if (mine !== asked) return;
    sample.replaceChildren();
    warnings.replaceChildren();
    if (answer.error) {
      out.replaceChildren(text('span', answer.error, 'error-text'));
      return;
    }
    const e = answer.estimate;
    if (e) {
      out.replaceChildren(
        text('strong', `≈ ${answer.count}`),
        document.createTextNode(' contacts match now'),
        text('div', `estimated from ${e.evaluated} of ${e.live} contacts `
          + `(95%: ${e.low}–${e.high}); Count now counts every contact`, 'small muted'),
      );
      out.querySelector('div').dataset.testid = 'live-estimate';
    } else {
      out.replaceChildren(text('strong', String(answer.count)), document.createTextNode(' contacts match now'));
    }
    for (const w of answer.warnings || []) {
      const li = text('li', w.message, 'warn-text');
      if (w.suggestion) {
        const fix = text('button', `Use ${w.attribute ? 'custom.' : ''}${w.suggestion}`, 'link');
        fix.type = 'button';
        fix.addEventListener('click', () => {
          const rename = w.attribute ? renameAttribute : w.property ? renameProperty : renameType;
          filter.value = rename(filter.value, w);
          ask();
        });
        li.append(fix);
      }
      warnings.append(li);
    }
    for (const m of answer.sample) {
      const li = document.createElement('li');
      const a = text('a', m.name);
      a.href = `/contacts/${m.id}`;
      li.append(a, document.createTextNode(' '), text('span', `${m.email} · ${m.stage} · ${m.score}`, 'muted'));
      sample.append(li);
    }
  }
  filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(ask, 300);
  });
  // Text typed before this script ran (or restored by the browser on going back) is counted
  // too: without this a fast typist, or a browser test, saw no count. Unless the page comes
  // with the count of every contact ("Count now"), which an estimate would replace.
  if (filter.value.trim() && !out.dataset.counted) ask();
})();
