// The ftrack sandbox's action menu: the selected rows go to the sandbox, which publishes ftrack.action.discover on
// its hub and answers the items the listeners replied; a click launches one, and a widget reply opens its URL in
// the frame below (or a new tab). Plain script, loaded from this site only (CSP script-src 'self').
'use strict';

(() => {
  const page = document.getElementById('menu-page');
  const grid = document.getElementById('grid');
  const status = document.getElementById('menu-status');
  const itemsList = document.getElementById('action-items');
  const actionsButton = document.getElementById('actions-button');
  const selectAll = document.getElementById('select-all');
  const widget = document.getElementById('widget');
  const frame = document.getElementById('widget-frame');
  const widgetTitle = document.getElementById('widget-title');
  const widgetLink = document.getElementById('widget-link');
  const widgetClose = document.getElementById('widget-close');
  if (!page || !grid || !status || !itemsList || !actionsButton) return;

  for (const select of document.querySelectorAll('select.auto-submit')) {
    select.addEventListener('change', () => select.form.submit());
  }
  selectAll?.addEventListener('change', () => {
    for (const box of grid.querySelectorAll('input.row-select')) box.checked = selectAll.checked;
  });

  const selection = () =>
    Array.from(grid.querySelectorAll('tr.row')).filter((row) => row.querySelector('input.row-select').checked).map((row) => row.dataset.id);
  const say = (text) => { status.textContent = text; };

  async function post(path, body) {
    const response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json = await response.json();
    if (!response.ok) throw new Error(json.error || `HTTP ${response.status}`);
    return json;
  }

  actionsButton.addEventListener('click', async () => {
    const ids = selection();
    itemsList.replaceChildren();
    say('Asking the listeners…');
    try {
      const { items } = await post('/sandbox/menu/discover', { login: page.dataset.login, type: page.dataset.type, ids });
      if (items.length === 0) { say('No actions for this selection.'); return; }
      say(`${items.length} action(s):`);
      for (const item of items) {
        const li = document.createElement('li');
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'action-item';
        button.textContent = item.variant ? `${item.label} ${item.variant}` : item.label || item.actionIdentifier;
        if (item.description) button.title = item.description;
        button.addEventListener('click', () => launch(item, ids));
        li.append(button);
        itemsList.append(li);
      }
    } catch (error) {
      say(`Discover failed: ${error.message}`);
    }
  });

  async function launch(item, ids) {
    say(`Launching ${item.label || item.actionIdentifier}…`);
    try {
      const { reply, timedOut } = await post('/sandbox/menu/launch', { login: page.dataset.login, type: page.dataset.type, ids, item });
      if (timedOut || !reply) { say('No reply from the action.'); return; }
      if (reply.type === 'widget' && typeof reply.url === 'string') {
        say(reply.message || 'Opened.');
        widgetTitle.textContent = reply.title || item.label || '';
        widgetLink.href = reply.url;
        frame.src = reply.url;
        widget.hidden = false;
        return;
      }
      if (Array.isArray(reply.items)) { say('The action answered a form: the sandbox menu does not play forms.'); return; }
      say(`${reply.success === false ? 'Failed' : 'Done'}: ${reply.message || ''}`);
    } catch (error) {
      say(`Launch failed: ${error.message}`);
    }
  }

  widgetClose?.addEventListener('click', () => { widget.hidden = true; frame.src = 'about:blank'; });
})();
