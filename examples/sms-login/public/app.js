// The page's behaviour: login and register dialogs, the header, banners, the visit counter and the phone panel.
// Plain JavaScript, no build step. The token and username live in cookies (SameSite=Strict); the API gets the token
// as `Authorization: Bearer`. Every server error arrives as { error: { code, message, field } } and is shown as is.
'use strict';

const PHONE_RE = /^1[3-9]\d{9}$/;
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ cookies and the API

function setCookie(name, value, maxAgeSeconds) {
  document.cookie = `${name}=${encodeURIComponent(value)}; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; SameSite=Strict`;
}
function getCookie(name) {
  const hit = document.cookie.split('; ').find((c) => c.startsWith(`${name}=`));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : null;
}
function clearSession() {
  setCookie('token', '', 0);
  setCookie('username', '', 0);
  renderHeader();
}

async function api(method, path, body) {
  const headers = {};
  const token = getCookie('token');
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    return { ok: false, status: 0, data: { error: { code: 'network', message: 'The server cannot be reached.' } } };
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: { code: 'bad_answer', message: text } }; }
  return { ok: res.ok, status: res.status, data };
}
const errorText = (r) => r.data?.error?.message ?? `Request failed (${r.status}).`;

function hint(el, text, kind) {
  el.textContent = text || '';
  el.className = `hint${kind ? ` ${kind}` : ''}`;
}

// ------------------------------------------------------------------ header and session

function renderHeader() {
  const name = getCookie('username');
  const signedIn = Boolean(getCookie('token') && name);
  $('nav-guest').hidden = signedIn;
  $('nav-user').hidden = !signedIn;
  $('header-user').textContent = signedIn ? name : '';
}

function keepSession(answer) {
  const maxAge = (Date.parse(answer.expiresAt) - Date.now()) / 1000;
  setCookie('token', answer.token, maxAge);
  setCookie('username', answer.username, maxAge);
  renderHeader();
}

async function checkSession() {
  if (!getCookie('token')) return renderHeader();
  const r = await api('GET', '/api/me');
  if (r.status === 401) clearSession();
  else renderHeader();
}

$('logout').addEventListener('click', async () => {
  await api('POST', '/api/logout');
  clearSession();
});

// ------------------------------------------------------------------ dialogs

const loginDialog = $('login-dialog');
const registerDialog = $('register-dialog');

function openLogin(notice, phone) {
  registerDialog.close();
  $('login-notice').hidden = !notice;
  $('login-notice').textContent = notice || '';
  if (phone) {
    $('login-phone').value = phone;
    $('login-account').value = phone;
  }
  if (!loginDialog.open) loginDialog.showModal();
  if (phone) void checkPhone(loginFlow);
  (phone ? $('login-code') : $('login-phone')).focus();
}
function openRegister() {
  loginDialog.close();
  if (!registerDialog.open) registerDialog.showModal();
  $('register-phone').focus();
}
$('login-open').addEventListener('click', () => openLogin());
$('register-open').addEventListener('click', openRegister);
$('to-register').addEventListener('click', openRegister);
$('to-login').addEventListener('click', () => openLogin());

for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => {
    for (const t of document.querySelectorAll('.tab')) {
      t.classList.toggle('active', t === tab);
      $(t.dataset.pane).hidden = t !== tab;
    }
  });
}

// ------------------------------------------------------------------ phone check and code sending (both dialogs)

// A flow ties a phone field, its hint, its send button and what "good" means (registered for login, free to register).
const loginFlow = {
  purpose: 'login', phone: $('login-phone'), hint: $('login-phone-hint'), send: $('send-code'),
  codeHint: $('login-code-hint'), checked: null, until: 0, timer: null,
  good: (registered) => registered,
  badText: 'This number is not registered. Register first.',
};
const registerFlow = {
  purpose: 'register', phone: $('register-phone'), hint: $('register-phone-hint'), send: $('register-send-code'),
  codeHint: $('register-hint'), checked: null, until: 0, timer: null,
  good: (registered) => !registered,
  badText: 'This number is already registered. Log in instead.',
};

function refreshSend(flow) {
  const left = Math.ceil((flow.until - Date.now()) / 1000);
  if (left > 0) {
    flow.send.disabled = true;
    flow.send.textContent = `Resend in ${left} s`;
    return;
  }
  clearInterval(flow.timer);
  flow.timer = null;
  flow.send.textContent = 'Send code';
  flow.send.disabled = flow.checked !== flow.phone.value.trim();
}

function startCountdown(flow, seconds) {
  flow.until = Date.now() + seconds * 1000;
  clearInterval(flow.timer);
  flow.timer = setInterval(() => refreshSend(flow), 250);
  refreshSend(flow);
}

async function checkPhone(flow) {
  const phone = flow.phone.value.trim();
  flow.checked = null;
  refreshSend(flow);
  if (!phone) return hint(flow.hint, '');
  if (!PHONE_RE.test(phone)) return hint(flow.hint, 'Enter an 11-digit mobile number starting with 1.', 'error');
  hint(flow.hint, 'Checking…');
  const r = await api('GET', `/api/users/check-phone?phone=${encodeURIComponent(phone)}`);
  if (phone !== flow.phone.value.trim()) return; // typed on meanwhile
  if (!r.ok) return hint(flow.hint, errorText(r), 'error');
  if (!flow.good(r.data.registered)) return hint(flow.hint, flow.badText, 'error');
  flow.checked = phone;
  hint(flow.hint, flow.purpose === 'login' ? '✓ Registered number' : '✓ Number available', 'ok');
  refreshSend(flow);
}

async function sendCode(flow) {
  const phone = flow.checked;
  if (!phone) return;
  flow.send.disabled = true;
  const r = await api('POST', '/api/sms/send', { phone, purpose: flow.purpose });
  if (r.status === 202) {
    hint(flow.codeHint, 'Code sent: it arrives on the phone at the right.', 'ok');
    startCountdown(flow, r.data.resendAfter);
  } else if (r.status === 429 && r.data?.error?.retryAfter) {
    hint(flow.codeHint, errorText(r), 'error');
    startCountdown(flow, r.data.error.retryAfter);
  } else {
    hint(flow.codeHint, errorText(r), 'error');
    refreshSend(flow);
  }
  void loadOutbox();
}

for (const flow of [loginFlow, registerFlow]) {
  flow.phone.addEventListener('blur', () => void checkPhone(flow));
  flow.phone.addEventListener('input', () => {
    if (flow.checked !== flow.phone.value.trim()) {
      flow.checked = null;
      refreshSend(flow);
    }
  });
  flow.send.addEventListener('click', () => void sendCode(flow));
}

// ------------------------------------------------------------------ submitting

$('pane-code').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await api('POST', '/api/login/sms', { phone: $('login-phone').value.trim(), code: $('login-code').value.trim() });
  if (!r.ok) return hint($('login-code-hint'), errorText(r), 'error');
  keepSession(r.data);
  loginDialog.close();
  $('pane-code').reset();
  hint($('login-code-hint'), '');
  hint(loginFlow.hint, '');
});

$('pane-password').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await api('POST', '/api/login/password', { account: $('login-account').value.trim(), password: $('login-password').value });
  if (!r.ok) return hint($('login-password-hint'), errorText(r), 'error');
  keepSession(r.data);
  loginDialog.close();
  $('pane-password').reset();
  hint($('login-password-hint'), '');
});

$('register-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const phone = $('register-phone').value.trim();
  const body = { phone, code: $('register-code').value.trim(), password: $('register-password').value };
  const username = $('register-username').value.trim();
  if (username) body.username = username;
  const r = await api('POST', '/api/register', body);
  if (!r.ok) return hint($('register-hint'), errorText(r), 'error');
  $('register-form').reset();
  hint($('register-hint'), '');
  hint(registerFlow.hint, '');
  openLogin(`Account ${r.data.username} created. Log in with a code or your password.`, phone);
});

// ------------------------------------------------------------------ home: banners, visits, phone panel

async function loadBanners() {
  const r = await api('GET', '/api/banners');
  const box = $('banners');
  if (!r.ok) {
    box.textContent = errorText(r);
    return;
  }
  box.replaceChildren(...r.data.banners.map((b) => {
    const a = document.createElement('a');
    a.className = 'banner';
    a.href = b.link;
    a.style.background = b.color;
    const h = document.createElement('h3');
    h.textContent = b.title;
    const p = document.createElement('p');
    p.textContent = b.subtitle;
    a.append(h, p);
    return a;
  }));
  const at = new Date(r.data.refreshedAt).toLocaleTimeString();
  $('banner-meta').textContent = `${r.data.banners.length} banners · refreshed by update_banner at ${at} · served from the ${r.data.source}`;
}

async function loadVisits() {
  const r = await api('GET', '/api/visits');
  if (r.ok) $('visits').textContent = String(r.data.visits);
}

let outboxShown = '';
async function loadOutbox() {
  const r = await api('GET', '/api/outbox');
  if (!r.ok) {
    $('sms-empty').textContent = r.status === 404 ? 'Messages go to a real SMS provider.' : errorText(r);
    return;
  }
  const key = r.data.messages.map((m) => m.id).join();
  if (key === outboxShown) return;
  outboxShown = key;
  $('sms-empty').hidden = r.data.messages.length > 0;
  $('sms-list').replaceChildren(...r.data.messages.map((m) => {
    const li = document.createElement('li');
    li.className = 'sms';
    li.dataset.to = m.to;
    const head = document.createElement('div');
    head.className = 'sms-head';
    head.textContent = `To ${m.to} · ${new Date(m.at).toLocaleTimeString()}`;
    const body = document.createElement('div');
    body.className = 'sms-text';
    const match = /\d{6}/.exec(m.text);
    if (match) {
      const code = document.createElement('b');
      code.className = 'sms-code';
      code.textContent = match[0];
      body.append(m.text.slice(0, match.index), code, m.text.slice(match.index + 6));
    } else {
      body.textContent = m.text;
    }
    li.append(head, body);
    return li;
  }));
}

void checkSession();
void loadBanners();
void loadVisits();
void loadOutbox();
setInterval(() => void loadOutbox(), 1000);
setInterval(() => void loadBanners(), 15000);
