// Times on the launch pages are written in UTC by the service; here they are shown in the reader's own time zone.
// The page's lifetime slides while files move, so when the time it shows comes the page asks the service: still
// valid (the new time is shown), or expired (the page says so, and what to do, instead of failing at the next click).

const format = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const local = (time) => {
  time.textContent = format.format(new Date(time.dateTime));
};
for (const time of document.querySelectorAll('time.local-time')) local(time);

const line = document.querySelector('[data-expiry-url]');
if (line) watchExpiry(line);

function watchExpiry(line) {
  const time = line.querySelector('time');
  const schedule = () => {
    const wait = Date.parse(time.dateTime) - Date.now() + 1000;
    // At least 5 s between asks; setTimeout takes at most 2^31-1 ms.
    setTimeout(check, Math.min(Math.max(5000, wait), 2 ** 31 - 1));
  };
  async function check() {
    let answer;
    try {
      answer = await fetch(line.dataset.expiryUrl, { cache: 'no-store', headers: { Accept: 'application/json' } });
    } catch {
      // The service cannot be reached now: ask again in a minute.
      setTimeout(check, 60_000);
      return;
    }
    if (answer.status === 410 || answer.status === 404) {
      expired(line);
      return;
    }
    if (answer.ok) {
      const { expiresAt } = await answer.json();
      time.dateTime = expiresAt;
      local(time);
    }
    schedule();
  }
  schedule();
}

function expired(line) {
  const actionMenu = document.documentElement.dataset.actionMenu || "the site's menu of actions";
  const text = `This page has expired: nothing more can be sent or downloaded from it. Run the action again from ${actionMenu}.`;
  line.textContent = text;
  const notice = document.createElement('p');
  notice.className = 'notice notice-warning page-expired';
  notice.setAttribute('role', 'alert');
  notice.textContent = text;
  document.querySelector('main')?.prepend(notice);
}
