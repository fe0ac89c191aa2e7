// The sandbox's grid page: row selection, the right-click (and "Actions ▾") menu, and firing an Action Menu Item
// as ShotGrid does — the sandbox builds and signs the payload, this page POSTs it as a form into a new tab or into
// the modal overlay's iframe. Plain script, loaded from this site only (CSP script-src 'self').
'use strict';

(() => {
  const page = document.getElementById('menu-page');
  const grid = document.getElementById('grid');
  const menu = document.getElementById('ami-menu');
  const actionsButton = document.getElementById('actions-button');
  const selectAll = document.getElementById('select-all');
  const countLabel = document.getElementById('selection-count');
  const statusLine = document.getElementById('menu-status');
  const overlay = document.getElementById('ami-overlay');
  const overlayTitle = document.getElementById('ami-overlay-title');
  const overlayClose = document.getElementById('ami-overlay-close');
  if (!page || !grid || !menu || !actionsButton || !selectAll || !overlay) return;

  const OVERLAY_FRAME_NAME = 'ami-overlay-frame';
  /** Row a shift-click extends from. */
  let anchorRow = null;
  /** Where focus goes back to when the menu or the overlay closes. */
  let returnFocus = null;

  // --- Selection -------------------------------------------------------------------------------------------

  const rows = () => Array.from(grid.querySelectorAll('tr.row'));
  const checkboxOf = (row) => row.querySelector('input.row-select');
  const isSelected = (row) => checkboxOf(row).checked;

  function setSelected(row, selected) {
    checkboxOf(row).checked = selected;
    row.classList.toggle('selected', selected);
  }

  function selectOnly(target) {
    for (const row of rows()) setSelected(row, row === target);
  }

  function selectRange(from, to) {
    const all = rows();
    const [start, end] = [all.indexOf(from), all.indexOf(to)].sort((a, b) => a - b);
    all.forEach((row, index) => setSelected(row, index >= start && index <= end));
  }

  const selectedIds = () => rows().filter(isSelected).map((row) => Number(row.dataset.id));
  const pageIds = () => rows().map((row) => Number(row.dataset.id));

  function refreshSelection() {
    const total = rows().length;
    const selected = selectedIds().length;
    if (countLabel) countLabel.textContent = `${selected} of ${total} selected`;
    selectAll.checked = total > 0 && selected === total;
    selectAll.indeterminate = selected > 0 && selected < total;
  }

  grid.addEventListener('click', (event) => {
    const row = event.target.closest('tr.row');
    if (!row || event.target.closest('input, a, button')) return;
    if (event.shiftKey && anchorRow) selectRange(anchorRow, row);
    else if (event.ctrlKey || event.metaKey) setSelected(row, !isSelected(row));
    else selectOnly(row);
    if (!event.shiftKey) anchorRow = row;
    refreshSelection();
  });

  grid.addEventListener('change', (event) => {
    const checkbox = event.target.closest('input.row-select');
    if (!checkbox) return;
    const row = checkbox.closest('tr.row');
    setSelected(row, checkbox.checked);
    anchorRow = row;
    refreshSelection();
  });

  selectAll.addEventListener('change', () => {
    for (const row of rows()) setSelected(row, selectAll.checked);
    refreshSelection();
  });

  // --- The menu --------------------------------------------------------------------------------------------

  const menuItems = () => Array.from(menu.querySelectorAll('.menu-item'));
  const enabledItems = () => menuItems().filter((item) => !item.disabled);

  function openMenu(x, y) {
    const nothingSelected = selectedIds().length === 0;
    for (const item of menuItems()) item.disabled = nothingSelected && item.dataset.selectionRequired === 'true';
    returnFocus = document.activeElement;
    menu.hidden = false;
    // Keep the whole menu inside the window, as a native context menu does.
    const left = Math.max(4, Math.min(x, window.innerWidth - menu.offsetWidth - 4));
    const top = Math.max(4, Math.min(y, window.innerHeight - menu.offsetHeight - 4));
    menu.style.left = `${left}px`;
    menu.style.top = `${top}px`;
    actionsButton.setAttribute('aria-expanded', 'true');
    (enabledItems()[0] ?? menu.querySelector('input[name="open-mode"]:checked'))?.focus();
  }

  function closeMenu({ restoreFocus = true } = {}) {
    if (menu.hidden) return;
    menu.hidden = true;
    actionsButton.setAttribute('aria-expanded', 'false');
    if (restoreFocus && returnFocus instanceof HTMLElement) returnFocus.focus();
  }

  grid.addEventListener('contextmenu', (event) => {
    const row = event.target.closest('tr.row');
    if (!row) return;
    event.preventDefault();
    // As on the site: right-clicking outside the selection selects just that row.
    if (!isSelected(row)) {
      selectOnly(row);
      anchorRow = row;
      refreshSelection();
    }
    openMenu(event.clientX, event.clientY);
  });

  actionsButton.addEventListener('click', () => {
    if (!menu.hidden) {
      closeMenu();
      return;
    }
    const box = actionsButton.getBoundingClientRect();
    openMenu(box.left, box.bottom + 2);
  });

  document.addEventListener('mousedown', (event) => {
    if (!menu.hidden && !menu.contains(event.target) && !actionsButton.contains(event.target)) closeMenu({ restoreFocus: false });
  });
  window.addEventListener('resize', () => closeMenu({ restoreFocus: false }));

  menu.addEventListener('keydown', (event) => {
    const items = enabledItems();
    const index = items.indexOf(document.activeElement);
    let next = null;
    if (event.key === 'ArrowDown') next = items[(index + 1) % items.length];
    else if (event.key === 'ArrowUp') next = items[(index - 1 + items.length) % items.length];
    else if (event.key === 'Home') next = items[0];
    else if (event.key === 'End') next = items[items.length - 1];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  });

  menu.addEventListener('click', (event) => {
    const item = event.target.closest('.menu-item');
    if (item && !item.disabled) void fire(item);
  });

  // --- Firing an Action Menu Item --------------------------------------------------------------------------

  function openMode(item) {
    const choice = menu.querySelector('input[name="open-mode"]:checked')?.value ?? 'default';
    if (choice === 'default') return item.dataset.openInOverlay === 'true' ? 'overlay' : 'tab';
    return choice;
  }

  async function fire(item) {
    const mode = openMode(item);
    const title = item.firstChild?.textContent?.trim() ?? 'Action';
    closeMenu();
    showStatus('');
    let launch;
    try {
      launch = await requestLaunch(Number(item.dataset.amiId));
    } catch (error) {
      showStatus(`Could not launch “${title}”: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (mode === 'overlay') {
      openOverlay(launch.title);
      postForm(launch, OVERLAY_FRAME_NAME);
    } else {
      postForm(launch, '_blank');
    }
  }

  /** Asks the sandbox for the signed payload of this page, as it is now. */
  async function requestLaunch(amiId) {
    const response = await fetch('/sandbox/menu/launch', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({
        ami_id: amiId,
        login: page.dataset.login,
        entity_type: page.dataset.entityType,
        selected_ids: selectedIds(),
        page_ids: pageIds(),
        sort_column: page.dataset.sortColumn,
        sort_direction: page.dataset.sortDirection,
        grouping_column: page.dataset.groupingColumn ?? '',
        session_uuid: page.dataset.sessionUuid,
      }),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error(body?.errors?.[0]?.title ?? `the sandbox answered ${response.status}`);
    return body;
  }

  /** The AMI request itself: a urlencoded form POST of the fields, in the order given. */
  function postForm(launch, target) {
    const form = document.createElement('form');
    form.method = 'post';
    form.action = launch.url;
    form.enctype = 'application/x-www-form-urlencoded';
    form.acceptCharset = 'UTF-8';
    form.target = target;
    form.hidden = true;
    for (const [name, value] of launch.fields) {
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = name;
      input.value = value;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
    setTimeout(() => form.remove(), 0);
  }

  function showStatus(message) {
    if (!statusLine) return;
    statusLine.textContent = message;
    statusLine.hidden = message === '';
  }

  // --- The modal overlay -----------------------------------------------------------------------------------

  function openOverlay(title) {
    if (overlayTitle) overlayTitle.textContent = title;
    if (overlay.hidden) returnFocus = document.activeElement;
    overlay.hidden = false;
    document.body.classList.add('overlay-open');
    overlayClose?.focus();
  }

  function closeOverlay() {
    if (overlay.hidden) return;
    overlay.hidden = true;
    document.body.classList.remove('overlay-open');
    // A fresh frame unloads the action's page (and whatever it was doing), as closing ShotGrid's modal does.
    const frame = document.getElementById(OVERLAY_FRAME_NAME);
    if (frame) frame.replaceWith(Object.assign(frame.cloneNode(false), { src: 'about:blank' }));
    if (returnFocus instanceof HTMLElement) returnFocus.focus();
    else actionsButton.focus();
  }

  overlayClose?.addEventListener('click', closeOverlay);

  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    if (!overlay.hidden) closeOverlay();
    else closeMenu();
  });

  // --- The toolbar -----------------------------------------------------------------------------------------

  for (const select of document.querySelectorAll('select.auto-submit')) {
    select.addEventListener('change', () => select.form?.requestSubmit());
  }

  // Checkboxes the browser restored (back/forward) keep their rows' look in step.
  for (const row of rows()) setSelected(row, isSelected(row));
  refreshSelection();
})();
