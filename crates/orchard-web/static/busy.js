// Forms whose answer can take seconds on a large database (a backtest or a publish over every
// contact, a new segment decided for everyone, an import): the pressed button's `data-busy`
// says what is happening while the page waits, and pressing again sends nothing more. The
// form's fields are left enabled, so that the request carries them all (a disabled button's
// name and value would not be sent).
(() => {
  const buttons = (form) => form.querySelectorAll('button:not([type="button"])');
  const reset = () => {
    for (const form of document.querySelectorAll('form[data-pending]')) {
      delete form.dataset.pending;
      for (const b of buttons(form)) b.removeAttribute('aria-disabled');
    }
    for (const note of document.querySelectorAll('.busy-note')) note.remove();
  };
  // Another submit button of a waiting form does nothing, and asks nothing first: a
  // confirmation accepted and then not sent would look like a publish that happened.
  document.addEventListener(
    'click',
    (e) => {
      const button = e.target instanceof Element && e.target.closest('button');
      if (button && button.type !== 'button' && button.form && button.form.dataset.pending) {
        e.preventDefault();
        e.stopImmediatePropagation();
      }
    },
    true,
  );
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
    for (const b of buttons(form)) b.setAttribute('aria-disabled', 'true');
    // Inside the form, after the buttons' row (or the button, when it has no row of its own).
    const note = document.createElement('p');
    note.className = 'busy-note small';
    note.setAttribute('role', 'status');
    if (button.parentElement === form) button.after(note);
    else button.parentElement.after(note);
    // Filled once it is in the page, so that screen readers announce the change.
    requestAnimationFrame(() => {
      note.textContent = button.dataset.busy;
    });
  });
  // A page brought back by the browser's Back button is the one left waiting; a submission
  // stopped (the browser's Stop, Escape) leaves it waiting too: ready again either way.
  window.addEventListener('pageshow', (e) => {
    if (e.persisted) reset();
  });
  if (window.navigation) window.navigation.addEventListener('navigateerror', reset);
})();
