// Console and portal behaviour: JSON forms with the CSRF header, and live regions refreshed by polling.

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
const say = (text, bad) => {
  const status = document.getElementById('status-message');
  if (!status) return;
  status.textContent = text;
  status.className = bad ? 'bad' : 'good';
};

// Polling leaves alone a region the user is working in; after an action every region is redrawn.
async function refreshLive(force) {
  const regions = [...document.querySelectorAll('[data-live]')];
  if (regions.length === 0) return;
  const response = await fetch(location.href, {
    headers: { accept: 'text/html' },
    credentials: 'same-origin',
  });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), 'text/html');
  for (const region of regions) {
    const next = fresh.getElementById(region.id);
    if (next && (force || !region.contains(document.activeElement)))
      region.replaceWith(document.adoptNode(next));
  }
}

async function submitJson(form, event) {
  event.preventDefault();
  const [method, url] = form.dataset.api.split(' ');
  const body = {};
  for (const [name, value] of new FormData(form)) if (value !== '') body[name] = value;
  const init = { method, credentials: 'same-origin', headers: { 'x-csrf-token': csrfToken() } };
  if (Object.keys(body).length > 0 || method !== 'DELETE') {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  const answer = text === '' ? {} : JSON.parse(text);
  if (!response.ok) {
    say(`${response.status}: ${answer.error ?? response.statusText}`, true);
    return;
  }
  if (form.dataset.then === 'reload') {
    location.assign(answer.next ?? location.href);
    return;
  }
  const secret = form.querySelector('output.secret');
  if (secret && typeof answer.key === 'string') {
    secret.textContent = `${answer.key} (shown once: copy it now)`;
  }
  say(form.dataset.done ?? 'done', false);
  form.reset();
  await refreshLive(true);
}

document.addEventListener('submit', (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.api)
    submitJson(form, event).catch((e) => say(String(e), true));
});

const interval = Number(document.body.dataset.poll ?? 5000);
setInterval(() => refreshLive(false).catch(() => undefined), interval);
