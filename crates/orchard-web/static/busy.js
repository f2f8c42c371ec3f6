// Forms whose answer can take seconds on a large database (a backtest or a publish over every
// contact, a new segment decided for everyone, an import): the pressed button's `data-busy`
// says what is happening while the page waits, and pressing again sends nothing more. The
// form's fields are left enabled, so that the request carries them all (a disabled button's
// name and value would not be sent).
(() => {
  document.addEventListener('submit', (e) => {
    const form = e.target;
    const button = e.submitter;
    // A confirmation declined (`onsubmit`/`onclick` returning false) sends nothing.
    if (e.defaultPrevented || !(form instanceof HTMLFormElement)) return;
    if (form.dataset.pending) {
      e.preventDefault();
      return;
    }
    if (!button || !button.dataset.busy) return;
    form.dataset.pending = 'true';
    form.setAttribute('aria-busy', 'true');
    for (const b of form.querySelectorAll('button')) b.setAttribute('aria-disabled', 'true');
    const note = document.createElement('p');
    note.className = 'busy-note small';
    note.setAttribute('role', 'status');
    note.textContent = button.dataset.busy;
    button.parentElement.after(note);
  });
  // A page brought back by the browser's Back button is the one left waiting: ready again.
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    for (const form of document.querySelectorAll('form[data-pending]')) {
      delete form.dataset.pending;
      form.removeAttribute('aria-busy');
      for (const b of form.querySelectorAll('button')) b.removeAttribute('aria-disabled');
    }
    for (const note of document.querySelectorAll('.busy-note')) note.remove();
  });
})();
