// omnicast dashboard: a small single-page app over the daemon's /v1 API.
// No framework, no build step, no third-party origin: it is served by
// omnicastd from the binary (daemon/ui.c) under a strict
// Content-Security-Policy, so it builds every node with the DOM API and
// never assigns HTML. The token lives in sessionStorage (this tab only).
'use strict';

(() => {
  const TOKEN_KEY = 'omnicast.token';
  const POLL_MS = 2000; // at most two requests every 2 s per page: one a second
  const RATE_WINDOW = 150; // samples kept for the send-rate chart (5 min)

  const nf = new Intl.NumberFormat();
  const pf = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
  const rf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  const tf = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

  const main = document.getElementById('main');
  const live = document.getElementById('live');
  const signout = document.getElementById('signout');

  // ---- DOM helpers: text only, never HTML

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(e, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }

  function fill(e, ...kids) {
    append(clear(e), kids);
  }

  // ---- formatting

  const num = (n) => (typeof n === 'number' ? nf.format(n) : '–');
  const pct = (n, d) => (d > 0 ? pf.format(n / d) : '–');

  function when(ms) {
    if (typeof ms !== 'number' || !ms) return '–';
    return dtf.format(new Date(ms));
  }

  function ago(ms) {
    if (typeof ms !== 'number' || !ms) return '–';
    const s = Math.round((ms - Date.now()) / 1000);
    const a = Math.abs(s);
    if (a < 60) return rtf.format(s, 'second');
    if (a < 3600) return rtf.format(Math.round(s / 60), 'minute');
    if (a < 86400) return rtf.format(Math.round(s / 3600), 'hour');
    return rtf.format(Math.round(s / 86400), 'day');
  }

  const timeEl = (ms) => el('time', { datetime: ms ? new Date(ms).toISOString() : null, title: when(ms), text: ago(ms) });

  // ---- the token

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  // /ui/#token=...: the fragment never reaches the server; it is taken and
  // removed from the address bar at once
  function takeFragmentToken() {
    const m = location.hash.match(/^#token=([^&]*)(?:&(.*))?$/);
    if (!m) return;
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    const next = m[2] && m[2].startsWith('/') ? '#' + m[2] : '#/campaigns';
    history.replaceState(null, '', location.pathname + next);
  }

  // ---- the API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  const WORDS = {
    400: 'The daemon refused the request',
    401: 'The token was not accepted: paste a valid API token',
    403: 'This token is not allowed to do that',
    404: 'Not found',
    405: 'The daemon does not offer that here',
    409: 'Not possible in the current state',
    413: 'The request is too large',
    429: 'Too many requests: slow down',
    503: 'The daemon cannot reach Redis right now: try again in a moment',
  };

  async function api(method, path, body) {
    const opts = {
      method,
      cache: 'no-store',
      headers: { Authorization: 'Bearer ' + token(), Accept: 'application/json' },
    };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, 'network', 'The daemon did not answer (is it running?)');
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      const why = err.message && err.message !== err.code ? err.message : '';
      const base = WORDS[res.status] || 'The daemon answered ' + res.status;
      const e = new ApiError(res.status, err.code || 'http_' + res.status, why ? base + ': ' + why : base + '.');
      if (res.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        scopes = null;
      }
      throw e;
    }
    return data;
  }

  // what the token may do: GET /v1/token names its scopes; a daemon without
  // that route (or a token without scopes) has them all
  const ALL = ['send', 'read', 'control', 'agent', 'admin'];
  let scopes = null;

  async function loadScopes() {
    if (scopes) return scopes;
    try {
      const t = await api('GET', '/v1/token');
      scopes = Array.isArray(t && t.scopes) && t.scopes.length ? t.scopes : ALL;
    } catch (e) {
      if (e.status === 401) throw e;
      scopes = ALL;
    }
    return scopes;
  }

  const can = (s) => !scopes || scopes.includes(s);

  // ---- page plumbing: one page at a time; its poll stops when it is left

  let gen = 0;
  let timer = null;

  function poll(fn) {
    const mine = gen;
    const tick = async () => {
      if (mine !== gen) return;
      try {
        await fn();
        live.textContent = 'Updated ' + tf.format(new Date());
        live.classList.remove('stale');
      } catch (e) {
        if (mine !== gen) return;
        if (e.status === 401) return renderGate(e.message);
        live.textContent = e.message;
        live.classList.add('stale');
      }
      if (mine === gen) timer = setTimeout(tick, POLL_MS);
    };
    return tick();
  }

  function errorBox(e) {
    return el('p', { class: 'error', role: 'alert' }, e.message || String(e));
  }

  function empty(title, ...what) {
    return el('div', { class: 'empty' }, el('p', { class: 'empty-title', text: title }), el('p', {}, ...what));
  }

  function code(s) {
    return el('code', { text: s });
  }

  // a table that scrolls sideways on its own on a narrow screen
  function table(headers, rows) {
    return el(
      'div',
      { class: 'table-wrap' },
      el('table', {}, el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))), el('tbody', {}, rows))
    );
  }

  const dialog = document.getElementById('confirm');

  function confirmAction(title, text, label) {
    return new Promise((resolve) => {
      document.getElementById('confirm-title').textContent = title;
      document.getElementById('confirm-text').textContent = text;
      const yes = document.getElementById('confirm-yes');
      const no = document.getElementById('confirm-no');
      yes.textContent = label;
      const done = (v) => {
        yes.removeEventListener('click', onYes);
        no.removeEventListener('click', onNo);
        dialog.removeEventListener('cancel', onNo);
        if (dialog.open) dialog.close();
        resolve(v);
      };
      const onYes = () => done(true);
      const onNo = (ev) => {
        if (ev) ev.preventDefault();
        done(false);
      };
      yes.addEventListener('click', onYes);
      no.addEventListener('click', onNo);
      dialog.addEventListener('cancel', onNo);
      dialog.showModal();
      no.focus();
    });
  }

  function badge(state) {
    return el('span', { class: 'badge s-' + String(state || 'unknown'), text: state || 'unknown' });
  }

  // ---- the token page

  function renderGate(message) {
    gen++;
    signout.hidden = true;
    const input = el('input', {
      id: 'token',
      type: 'password',
      autocomplete: 'off',
      spellcheck: 'false',
      required: true,
      'aria-describedby': 'token-help',
    });
    const form = el(
      'form',
      {
        class: 'card gate',
        onsubmit: (ev) => {
          ev.preventDefault();
          const t = input.value.trim();
          if (!t) return;
          sessionStorage.setItem(TOKEN_KEY, t);
          scopes = null;
          if (!location.hash.startsWith('#/')) location.hash = '#/campaigns';
          route();
        },
      },
      el('h1', { text: 'Sign in with an API token' }),
      message ? el('p', { class: 'error', role: 'alert', text: message }) : null,
      el('label', { for: 'token', text: 'API token' }),
      input,
      el(
        'p',
        { id: 'token-help', class: 'muted' },
        'A line of the daemon’s ',
        code('api_tokens_file'),
        '. It is kept in this tab only (sessionStorage) and sent to this daemon’s API. You can also open ',
        code('/ui/#token=…'),
        '.'
      ),
      el('button', { type: 'submit', class: 'primary', text: 'Open the dashboard' })
    );
    fill(main, form);
    input.focus();
  }

  // ---- campaigns

  function progressOf(c) {
    const total = c.total || 0;
    const done = total - (c.pending || 0);
    return { total, done: Math.max(0, Math.min(total, done)) };
  }

  function pageCampaigns() {
    const stateSel = el(
      'select',
      { id: 'state', 'aria-label': 'State' },
      ['', 'running', 'scheduled', 'paused', 'done', 'cancelled'].map((s) =>
        el('option', { value: s, text: s || 'every state' })
      )
    );
    const params = new URLSearchParams(location.hash.split('?')[1] || '');
    stateSel.value = params.get('state') || '';
    stateSel.addEventListener('change', () => {
      location.hash = '#/campaigns' + (stateSel.value ? '?state=' + stateSel.value : '');
    });
    const body = el('div', { id: 'campaigns' });
    fill(
      main,
      el('div', { class: 'row' }, el('h1', { text: 'Campaigns' }), el('span', { class: 'grow' }), el('label', { class: 'inline' }, 'Show ', stateSel)),
      body
    );
    let extra = []; // pages loaded with "More"
    let next = null;
    const draw = (list) => {
      if (!list.length) {
        fill(
          body,
          empty(
            stateSel.value ? 'No ' + stateSel.value + ' campaigns.' : 'No campaigns yet.',
            'Queue a broadcast with ',
            code('POST /v1/broadcasts'),
            ' (see docs/api.md) or run ',
            code('make demo'),
            '; it appears here within two seconds.'
          )
        );
        return;
      }
      const rows = list.map((c) => {
        const p = progressOf(c);
        return el(
          'tr',
          {},
          el('td', {}, el('a', { href: '#/campaigns/' + encodeURIComponent(c.id), text: c.id })),
          el('td', {}, badge(c.state)),
          el(
            'td',
            { class: 'progress-cell' },
            el('progress', { max: p.total || 1, value: p.done, 'aria-label': 'progress of ' + c.id }),
            el('span', { class: 'muted small', text: num(p.done) + ' / ' + num(p.total) })
          ),
          el('td', { class: 'num', text: num(c.sent) }),
          el('td', { class: 'num', text: num(c.delivered) }),
          el('td', { class: 'num', text: num(c.replied) }),
          el('td', {}, timeEl(c.created_at))
        );
      });
      const more = next
        ? el('button', {
            type: 'button',
            class: 'quiet',
            text: 'More',
            onclick: async (ev) => {
              ev.target.disabled = true;
              try {
                const q = new URLSearchParams({ limit: '50', cursor: next });
                if (stateSel.value) q.set('state', stateSel.value);
                const r = await api('GET', '/v1/campaigns?' + q);
                extra = extra.concat(r.campaigns || []);
                next = r.next;
                await refresh();
              } catch (e) {
                body.append(errorBox(e));
              }
            },
          })
        : null;
      fill(body, table(['Campaign', 'State', 'Progress', 'Sent', 'Delivered', 'Replied', 'Created'], rows), more);
    };
    let first = true;
    const refresh = async () => {
      const q = new URLSearchParams({ limit: '50' });
      if (stateSel.value) q.set('state', stateSel.value);
      const r = await api('GET', '/v1/campaigns?' + q);
      if (first) {
        next = r.next;
        first = false;
      }
      const seen = new Set((r.campaigns || []).map((c) => c.id));
      draw((r.campaigns || []).concat(extra.filter((c) => !seen.has(c.id))));
    };
    return poll(refresh);
  }

  const FUNNEL = [
    ['total', 'Recipients'],
    ['sent', 'Sent'],
    ['delivered', 'Delivered'],
    ['read', 'Read'],
    ['replied', 'Replied'],
    ['opted_out', 'Opted out'],
    ['converted', 'Converted'],
  ];

  // horizontal bars, each scaled to the recipients
  function funnelSvg(c) {
    const stages = FUNNEL.filter(([k]) => k !== 'converted' || typeof c[k] === 'number');
    const total = c.total || 0;
    const rowH = 28;
    const W = 400; // about a card's width: the text stays near its size
    const labelW = 86;
    const valueW = 104;
    const barW = W - labelW - valueW;
    const g = stages.map(([k, label], i) => {
      const v = c[k] || 0;
      const w = total > 0 ? Math.max(v > 0 ? 2 : 0, Math.round((barW * v) / total)) : 0;
      const y = i * rowH;
      return svg(
        'g',
        { class: 'stage', 'data-stage': k },
        svg('text', { x: 0, y: y + 18, class: 'label', text: label }),
        svg('rect', { x: labelW, y: y + 5, width: barW, height: rowH - 10, rx: 4, class: 'track' }),
        svg('rect', { x: labelW, y: y + 5, width: w, height: rowH - 10, rx: 4, class: 'bar b-' + k }),
        svg('text', { x: W - valueW + 8, y: y + 18, class: 'value', 'data-value': v, text: num(v) + (k === 'total' ? '' : '  ' + pct(v, total)) })
      );
    });
    return svg(
      'svg',
      { viewBox: '0 0 ' + W + ' ' + stages.length * rowH, class: 'funnel', role: 'img', 'aria-label': stages.map(([k, l]) => l + ' ' + (c[k] || 0)).join(', ') },
      g
    );
  }

  // sent per second between polls, over the last few minutes
  function rateSvg(samples) {
    const W = 400;
    const H = 110;
    const pts = [];
    for (let i = 1; i < samples.length; i++) {
      const dt = (samples[i].t - samples[i - 1].t) / 1000;
      if (dt > 0) pts.push({ t: samples[i].t, r: Math.max(0, (samples[i].sent - samples[i - 1].sent) / dt) });
    }
    if (pts.length < 2)
      return el('p', { class: 'muted', text: 'The send rate is drawn from this page’s updates: it appears after a few seconds.' });
    const max = Math.max(1, ...pts.map((p) => p.r));
    const t0 = pts[0].t;
    const span = Math.max(1, pts[pts.length - 1].t - t0);
    const xy = pts.map((p) => [Math.round(((p.t - t0) / span) * (W - 4)) + 2, Math.round(H - 4 - (p.r / max) * (H - 24))]);
    const line = xy.map(([x, y]) => x + ',' + y).join(' ');
    const area = '2,' + (H - 4) + ' ' + line + ' ' + xy[xy.length - 1][0] + ',' + (H - 4);
    const now = pts[pts.length - 1].r;
    return el(
      'div',
      {},
      el('p', { class: 'big' }, el('span', { 'data-rate': now, text: rf.format(now) }), el('span', { class: 'muted small', text: ' messages/s now · peak ' + rf.format(max) })),
      svg(
        'svg',
        { viewBox: '0 0 ' + W + ' ' + H, class: 'rate', role: 'img', 'aria-label': 'send rate, now ' + rf.format(now) + ' per second' },
        svg('polygon', { points: area, class: 'rate-area' }),
        svg('polyline', { points: line, class: 'rate-line' })
      )
    );
  }

  function channelsTable(c) {
    const ch = c.channels || {};
    const names = Object.keys(ch);
    if (!names.length) return el('p', { class: 'muted', text: 'No message has gone out on any channel yet.' });
    const cols = ['sent', 'failed', 'delivered', 'read'];
    return el(
      'div',
      { class: 'table-wrap' },
      el(
        'table',
        { class: 'channels' },
        el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Channel' }), cols.map((k) => el('th', { scope: 'col', class: 'num', text: k })))),
        el(
          'tbody',
          {},
          names.map((n) => el('tr', { 'data-channel': n }, el('th', { scope: 'row', text: n }), cols.map((k) => el('td', { class: 'num', 'data-col': k, text: num(ch[n][k] || 0) }))))
        )
      )
    );
  }

  // failures by reason: the campaign's `failures` object when the daemon
  // keeps one, else the per-channel failed counts
  function failuresBlock(c) {
    const f = c.failures && typeof c.failures === 'object' ? c.failures : null;
    const rows = f ? Object.entries(f).filter(([, v]) => v > 0) : [];
    if (!rows.length) {
      const failed = (c.failed || 0) + (c.failed_after_send || 0);
      return el('p', { class: failed ? '' : 'muted', text: failed ? num(failed) + ' failed (no breakdown by reason)' : 'No failures.' });
    }
    rows.sort((a, b) => b[1] - a[1]);
    return el('ul', { class: 'reasons' }, rows.map(([k, v]) => el('li', {}, el('code', { text: k }), ' ', el('span', { class: 'num', text: num(v) }))));
  }

  function pageCampaign(id) {
    const head = el('div', { class: 'row wrap' });
    const controls = el('div', { class: 'row wrap controls' });
    const funnel = el('section', { class: 'card', 'aria-labelledby': 'h-funnel' });
    const rate = el('section', { class: 'card', 'aria-labelledby': 'h-rate' });
    const chans = el('section', { class: 'card', 'aria-labelledby': 'h-chan' });
    const fails = el('section', { class: 'card', 'aria-labelledby': 'h-fail' });
    const unc = el('section', { class: 'card', 'aria-labelledby': 'h-unc' });
    const msg = el('div', { 'aria-live': 'polite' });
    fill(main, el('p', {}, el('a', { href: '#/campaigns', text: '← Campaigns' })), head, controls, msg, el('div', { class: 'grid' }, funnel, rate, chans, fails, unc));
    const samples = [];
    let last = null;
    let uncList = null;

    const act = async (what, title, text, label) => {
      if (!(await confirmAction(title, text, label))) return;
      try {
        const r = await api('POST', '/v1/campaigns/' + encodeURIComponent(id) + '/' + what);
        fill(msg, el('p', { class: 'ok', role: 'status', text: what === 'resend-uncertain' ? num(r.queued) + ' recipients queued to be sent again.' : 'Campaign is now ' + r.state + '.' }));
        await refresh();
      } catch (e) {
        fill(msg, errorBox(e));
      }
    };

    const button = (what, label, cls, title, text) =>
      el('button', { type: 'button', class: cls, id: 'do-' + what, text: label, onclick: () => act(what, title, text, label) });

    const refresh = async () => {
      const c = await api('GET', '/v1/campaigns/' + encodeURIComponent(id));
      last = c;
      samples.push({ t: Date.now(), sent: c.sent || 0 });
      if (samples.length > RATE_WINDOW) samples.shift();
      const p = progressOf(c);
      fill(
        head,
        el('h1', { text: c.id }),
        badge(c.state),
        el('span', { class: 'muted', text: c.type || '' }),
        el('span', { class: 'grow' }),
        el('span', { class: 'muted small' }, 'created ', timeEl(c.created_at), c.finished_at ? [' · finished ', timeEl(c.finished_at)] : null)
      );
      const btns = [];
      if (can('control')) {
        if (c.state === 'running' || c.state === 'scheduled')
          btns.push(button('pause', 'Pause', 'quiet', 'Pause ' + c.id + '?', 'No new message goes out until it is resumed. Messages already on the wire finish.'));
        if (c.state === 'paused') btns.push(button('resume', 'Resume', 'primary', 'Resume ' + c.id + '?', 'Sending starts again where it stopped.'));
        if (c.state !== 'done' && c.state !== 'cancelled')
          btns.push(button('cancel', 'Cancel', 'danger', 'Cancel ' + c.id + '?', 'Every recipient not yet sent ends cancelled. This cannot be undone.'));
        if (c.uncertain > 0)
          btns.push(
            button('resend-uncertain', 'Resend uncertain', 'danger', 'Send ' + num(c.uncertain) + ' uncertain recipients again?', 'They may already have the message: check the provider’s logs first (docs/delivery.md). Each goes out once more.')
          );
      }
      fill(
        controls,
        el('progress', { max: p.total || 1, value: p.done, 'aria-label': 'progress' }),
        el('span', { class: 'muted', id: 'progress-text', text: num(p.done) + ' of ' + num(p.total) + ' done · ' + num(c.pending) + ' pending' }),
        el('span', { class: 'grow' }),
        btns,
        el('a', { class: 'button quiet', href: '#/conversations?campaign=' + encodeURIComponent(c.id), text: 'Conversations' })
      );
      fill(funnel, el('h2', { id: 'h-funnel', text: 'Funnel' }), funnelSvg(c));
      fill(rate, el('h2', { id: 'h-rate', text: 'Send rate' }), rateSvg(samples));
      fill(chans, el('h2', { id: 'h-chan', text: 'Channels' }), channelsTable(c));
      fill(fails, el('h2', { id: 'h-fail', text: 'Failures' }), failuresBlock(c));
      const list = uncList
        ? uncList.length
          ? table(['To', 'Channel', 'Reason', 'On the wire'], uncList.map((u) => el('tr', {}, el('td', { text: u.to }), el('td', { text: u.channel }), el('td', {}, code(u.reason || '')), el('td', { text: when(u.wire_at || u.claimed_at || u.at) }))))
          : el('p', { class: 'muted', text: 'None listed.' })
        : null;
      fill(
        unc,
        el('h2', { id: 'h-unc', text: 'Uncertain' }),
        el('p', {}, el('span', { class: 'big', text: num(c.uncertain || 0) }), ' ', el('span', { class: 'muted', text: 'sent, no answer: the provider may or may not have them' })),
        c.uncertain > 0 && !uncList
          ? el('button', {
              type: 'button',
              class: 'quiet',
              text: 'List them',
              onclick: async () => {
                try {
                  const r = await api('GET', '/v1/campaigns/' + encodeURIComponent(id) + '/uncertain?count=100');
                  uncList = r.uncertain || [];
                  await refresh();
                } catch (e) {
                  unc.append(errorBox(e));
                }
              },
            })
          : null,
        list
      );
    };
    return poll(async () => {
      try {
        await refresh();
      } catch (e) {
        if (e.status === 404 && !last) {
          gen++;
          fill(main, el('p', {}, el('a', { href: '#/campaigns', text: '← Campaigns' })), empty('No campaign ' + id + '.', 'It may have expired, or the id is mistyped.'));
          return;
        }
        throw e;
      }
    });
  }

  // ---- conversations

  function pageConversations() {
    const params = new URLSearchParams(location.hash.split('?')[1] || '');
    const state = el('select', { id: 'conv-state', 'aria-label': 'State' }, el('option', { value: 'open', text: 'open' }), el('option', { value: 'all', text: 'all' }));
    state.value = params.get('state') || 'open';
    const campaign = el('input', { id: 'conv-campaign', type: 'search', placeholder: 'campaign id', value: params.get('campaign') || '', 'aria-label': 'Campaign' });
    const channel = el('select', { id: 'conv-channel', 'aria-label': 'Channel' }, el('option', { value: '', text: 'every channel' }));
    const wanted = params.get('channel') || '';
    const apply = () => {
      const q = new URLSearchParams();
      if (state.value !== 'open') q.set('state', state.value);
      if (campaign.value.trim()) q.set('campaign', campaign.value.trim());
      if (channel.value) q.set('channel', channel.value);
      location.hash = '#/conversations' + (q.toString() ? '?' + q : '');
    };
    state.addEventListener('change', apply);
    channel.addEventListener('change', apply);
    campaign.addEventListener('change', apply);
    const body = el('div', { id: 'conversations' });
    fill(
      main,
      el('div', { class: 'row wrap' }, el('h1', { text: 'Conversations' }), el('span', { class: 'grow' }), el('label', { class: 'inline' }, 'Show ', state), channel, campaign),
      body
    );
    const channelsSeen = new Set(wanted ? [wanted] : []);
    return poll(async () => {
      const q = new URLSearchParams({ limit: '200' });
      if (state.value === 'open') q.set('state', 'open');
      if (campaign.value.trim()) q.set('campaign', campaign.value.trim());
      const r = await api('GET', '/v1/conversations?' + q);
      let list = r.conversations || [];
      for (const c of list) if (c.channel && !channelsSeen.has(c.channel)) channelsSeen.add(c.channel);
      if (channel.options.length !== channelsSeen.size + 1) {
        fill(channel, el('option', { value: '', text: 'every channel' }), [...channelsSeen].sort().map((n) => el('option', { value: n, text: n })));
        channel.value = wanted;
      }
      if (wanted) list = list.filter((c) => c.channel === wanted);
      if (!list.length) {
        fill(
          body,
          empty(
            state.value === 'open' ? 'No open conversations.' : 'No conversations.',
            'A conversation opens when a contact replies to a campaign (attributed to it) or when ',
            code('POST /v1/messages'),
            ' starts one.'
          )
        );
        return;
      }
      fill(
        body,
        table(['Contact', 'Channel', 'Campaign', 'State', 'Last activity'], list.map((c) =>
                el(
                  'tr',
                  {},
                  el('td', {}, el('a', { href: '#/conversations/' + encodeURIComponent(c.id), text: c.name ? c.name + ' · ' + c.contact : c.contact || c.id })),
                  el('td', { text: c.channel || '' }),
                  el('td', {}, c.campaign ? el('a', { href: '#/campaigns/' + encodeURIComponent(c.campaign), text: c.campaign }) : el('span', { class: 'muted', text: c.origin || '' })),
                  el('td', {}, badge(c.state)),
                  el('td', {}, timeEl(c.last_message_at || c.updated_at || c.created_at))
                )
              ))
      );
    });
  }

  const TICKS = { queued: '🕓', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '✕' };

  function pageConversation(id) {
    const head = el('div', { class: 'row wrap' });
    const log = el('ol', { class: 'log', 'aria-label': 'Messages', 'aria-live': 'polite' });
    const msg = el('div', { 'aria-live': 'polite' });
    const box = el('div');
    fill(main, el('p', {}, el('a', { href: '#/conversations', text: '← Conversations' })), head, msg, log, box);
    let drawnBox = null;
    let count = -1;

    const drawBox = (c) => {
      const key = c.state + ':' + can('agent');
      if (drawnBox === key) return;
      drawnBox = key;
      if (c.state !== 'open') {
        fill(box, el('p', { class: 'muted', text: 'This conversation is closed: the contact’s next message opens a new one.' }));
        return;
      }
      if (!can('agent')) {
        fill(box, el('p', { class: 'muted', text: 'This token may read conversations but not answer them (scope agent).' }));
        return;
      }
      const text = el('textarea', { id: 'reply', rows: 3, maxlength: 4096, 'aria-label': 'Reply', placeholder: 'Write a reply…' });
      const send = el('button', { type: 'submit', class: 'primary', id: 'send', text: 'Send' });
      const form = el(
        'form',
        {
          class: 'reply',
          onsubmit: async (ev) => {
            ev.preventDefault();
            const t = text.value.trim();
            if (!t) return;
            send.disabled = true;
            try {
              await api('POST', '/v1/conversations/' + encodeURIComponent(id) + '/messages', { text: t });
              text.value = '';
              fill(msg, el('p', { class: 'ok', role: 'status', text: 'Queued.' }));
              await refresh();
            } catch (e) {
              fill(msg, errorBox(e));
            } finally {
              send.disabled = false;
            }
          },
        },
        text,
        el(
          'div',
          { class: 'row end' },
          el('button', {
            type: 'button',
            class: 'quiet',
            id: 'close',
            text: 'Close conversation',
            onclick: async () => {
              if (!(await confirmAction('Close this conversation?', 'The contact’s next message opens a new conversation, attributed afresh.', 'Close'))) return;
              try {
                await api('POST', '/v1/conversations/' + encodeURIComponent(id) + '/close');
                await refresh();
              } catch (e) {
                fill(msg, errorBox(e));
              }
            },
          }),
          send
        )
      );
      text.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
      });
      fill(box, form);
    };

    const refresh = async () => {
      const c = await api('GET', '/v1/conversations/' + encodeURIComponent(id));
      fill(
        head,
        el('h1', { text: c.name ? c.name + ' · ' + c.contact : c.contact }),
        badge(c.state),
        el('span', { class: 'muted', text: c.channel }),
        el('span', { class: 'grow' }),
        c.campaign ? el('span', { class: 'muted small' }, 'from campaign ', el('a', { href: '#/campaigns/' + encodeURIComponent(c.campaign), text: c.campaign })) : el('span', { class: 'muted small', text: c.origin || '' })
      );
      const messages = c.messages || [];
      const sig = JSON.stringify(messages.map((m) => [m.entry, m.status]));
      if (sig !== count) {
        count = sig;
        if (!messages.length) fill(log, el('li', { class: 'muted', text: 'No messages yet.' }));
        else
          fill(
            log,
            messages.map((m) => {
              const st = m.status || (m.dir === 'out' ? 'sent' : '');
              return el(
                'li',
                { class: 'msg ' + (m.dir === 'in' ? 'in' : 'out') + (m.kind === 'system' ? ' system' : '') },
                el('p', { class: 'text', text: m.text || (m.campaign ? 'campaign ' + m.campaign : '') }),
                el(
                  'p',
                  { class: 'meta' },
                  timeEl(m.at),
                  m.dir === 'out' && st ? el('span', { class: 'tick t-' + st, title: st + (m.reason ? ': ' + m.reason : ''), 'aria-label': st, text: ' ' + (TICKS[st] || st) }) : null,
                  m.reason ? el('span', { class: 'error-text', text: ' ' + m.reason }) : null
                )
              );
            })
          );
      }
      drawBox(c);
    };
    return poll(async () => {
      try {
        await refresh();
      } catch (e) {
        if (e.status === 404 && count === -1) {
          gen++;
          fill(main, el('p', {}, el('a', { href: '#/conversations', text: '← Conversations' })), empty('No conversation ' + id + '.', 'The id may be mistyped.'));
          return;
        }
        throw e;
      }
    });
  }

  // ---- operations

  function pageOperations() {
    const body = el('div', { id: 'connectors' });
    const dead = el('div', { id: 'dead' });
    const supp = el('div', { id: 'suppressions' });
    const msg = el('div', { 'aria-live': 'polite' });
    fill(
      main,
      el('h1', { text: 'Operations' }),
      msg,
      el('section', { class: 'card' }, el('h2', { text: 'Connectors' }), body),
      el('div', { class: 'grid' }, el('section', { class: 'card' }, el('h2', { text: 'Dead letters' }), dead), el('section', { class: 'card' }, el('h2', { text: 'Suppressed addresses' }), supp))
    );
    const say = (text) => fill(msg, el('p', { class: 'ok', role: 'status', text }));

    // suppressions: one channel's page at a time, loaded on demand
    const chanSel = el('select', { id: 'supp-channel', 'aria-label': 'Channel' });
    const addr = el('input', { id: 'supp-address', type: 'text', placeholder: '+15550000001 or name@example.com', 'aria-label': 'Address to suppress', autocomplete: 'off' });
    const suppList = el('div', { id: 'supp-list' });
    let suppCursor = null;
    const loadSupp = async (more) => {
      if (!chanSel.value) return;
      const q = new URLSearchParams({ count: '100' });
      if (more && suppCursor) q.set('cursor', suppCursor);
      try {
        const r = await api('GET', '/v1/suppressions/' + encodeURIComponent(chanSel.value) + '?' + q);
        suppCursor = r.next_cursor;
        const items = (r.addresses || []).map((a) =>
          el(
            'li',
            { 'data-address': a },
            el('code', { text: a }),
            can('admin')
              ? el('button', {
                  type: 'button',
                  class: 'quiet',
                  text: 'Remove',
                  'aria-label': 'Remove ' + a,
                  onclick: async () => {
                    if (!(await confirmAction('Remove ' + a + '?', 'Campaigns on ' + chanSel.value + ' reach this address again.', 'Remove'))) return;
                    try {
                      await api('POST', '/v1/suppressions/' + encodeURIComponent(chanSel.value) + '/remove', { address: a });
                      say(a + ' removed from ' + chanSel.value + '.');
                      await loadSupp(false);
                    } catch (e) {
                      fill(msg, errorBox(e));
                    }
                  },
                })
              : null
          )
        );
        if (!more) clear(suppList);
        if (!items.length && !more) suppList.append(el('p', { class: 'muted', text: 'No address is suppressed on ' + chanSel.value + '. Opt-outs (STOP, unsubscribes, bounces) land here.' }));
        else suppList.append(el('ul', { class: 'reasons' }, items));
        if (suppCursor) suppList.append(el('button', { type: 'button', class: 'quiet', text: 'More', onclick: (ev) => { ev.target.remove(); loadSupp(true); } }));
      } catch (e) {
        fill(suppList, errorBox(e));
      }
    };
    chanSel.addEventListener('change', () => loadSupp(false));
    const addForm = can('admin')
      ? el(
          'form',
          {
            class: 'row wrap',
            onsubmit: async (ev) => {
              ev.preventDefault();
              const a = addr.value.trim();
              if (!a) return;
              try {
                const r = await api('POST', '/v1/suppressions/' + encodeURIComponent(chanSel.value) + '/add', { address: a });
                addr.value = '';
                say(r.address + (r.changed ? ' suppressed on ' : ' was already suppressed on ') + chanSel.value + '.');
                await loadSupp(false);
              } catch (e) {
                fill(msg, errorBox(e));
              }
            },
          },
          addr,
          el('button', { type: 'submit', class: 'quiet', id: 'supp-add', text: 'Suppress' })
        )
      : null;
    let suppReady = false;

    const drawDead = (r) => {
      const list = r.dead || [];
      if (!list.length) {
        fill(dead, el('p', { class: 'muted', text: 'No dead letters: every job and event was taken.' }));
        return;
      }
      fill(
        dead,
        el(
          'ul',
          { class: 'dead' },
          list.map((d) =>
            el(
              'li',
              { 'data-dead': d.id },
              el('p', {}, el('strong', { text: d.reason || '(no reason)' })),
              el('p', { class: 'muted small' }, d.source || '', ' · ', timeEl(Number(d.at) || null), ' · ', el('code', { text: d.id })),
              d.job ? el('pre', { class: 'job', text: d.job.length > 400 ? d.job.slice(0, 400) + '…' : d.job }) : null,
              d.job && can('admin')
                ? el('button', {
                    type: 'button',
                    class: 'quiet',
                    text: 'Replay',
                    'aria-label': 'Replay ' + d.id,
                    onclick: async () => {
                      if (!(await confirmAction('Replay this job?', 'It goes back onto the queue as it was. A job refused for its content is refused again: fix it at the source first.', 'Replay'))) return;
                      try {
                        const x = await api('POST', '/v1/dead/' + encodeURIComponent(d.id) + '/replay');
                        say('Replayed as ' + x.replayed_as + '.');
                      } catch (e) {
                        fill(msg, errorBox(e));
                      }
                    },
                  })
                : null
            )
          )
        ),
        r.next ? el('p', { class: 'muted small', text: 'Older ones: GET /v1/dead?before=' + r.next }) : null
      );
    };

    return poll(async () => {
      const [r, d] = await Promise.all([api('GET', '/v1/connectors'), api('GET', '/v1/dead?count=20')]);
      drawDead(d);
      const list = r.connectors || [];
      if (!suppReady) {
        suppReady = true;
        const names = [...new Set(list.flatMap((c) => c.channels || []))].sort();
        fill(chanSel, names.map((n) => el('option', { value: n, text: n })));
        fill(supp, el('label', { class: 'inline' }, 'Channel ', chanSel), addForm, suppList);
        loadSupp(false);
      }
      if (!list.length) {
        fill(body, empty('No connectors.', 'Add a ', code('[connector.NAME]'), ' section to the configuration (docs/configuration.md).'));
        return;
      }
      fill(
        body,
        table(['Name', 'Type', 'Channels', 'Rate', 'In flight', 'Queued', 'Latency', 'Sent', 'Failed', 'State'], list.map((c) =>
                el(
                  'tr',
                  { 'data-connector': c.name },
                  el('th', { scope: 'row', text: c.name }),
                  el('td', { text: c.type }),
                  el('td', { text: (c.channels || []).join(', ') }),
                  el('td', { class: 'num', text: c.rate_per_s ? rf.format(c.rate_per_s) + '/s' : 'unlimited' }),
                  el('td', { class: 'num', text: num(c.inflight) + ' / ' + num(c.max_inflight) }),
                  el('td', { class: 'num', text: num(c.queued) }),
                  el('td', { class: 'num', text: typeof c.latency_ms_avg === 'number' ? rf.format(c.latency_ms_avg) + ' ms' : '–' }),
                  el('td', { class: 'num', text: num(c.counts && c.counts.sent) }),
                  el('td', { class: 'num', text: num(c.counts && c.counts.failed) }),
                  el(
                    'td',
                    {},
                    c.halted
                      ? [
                          badge('halted'),
                          ' ',
                          el('code', { text: c.halt_reason || '' }),
                          can('admin')
                            ? el('button', {
                                type: 'button',
                                class: 'quiet',
                                text: 'Resume',
                                onclick: async () => {
                                  if (!(await confirmAction('Resume ' + c.name + '?', 'It sends again at once. Resume only once the provider’s problem is fixed.', 'Resume'))) return;
                                  try {
                                    await api('POST', '/v1/connectors/' + encodeURIComponent(c.name) + '/resume');
                                    fill(msg, el('p', { class: 'ok', role: 'status', text: c.name + ' resumed.' }));
                                  } catch (e) {
                                    fill(msg, errorBox(e));
                                  }
                                },
                              })
                            : null,
                        ]
                      : badge('sending')
                  )
                )
              ))
      );
    });
  }

  // ---- the router

  function route() {
    gen++;
    clearTimeout(timer);
    if (dialog.open) dialog.close();
    if (!token()) return renderGate(null);
    signout.hidden = false;
    const h = location.hash.startsWith('#/') ? location.hash.slice(2) : 'campaigns';
    const [path] = h.split('?');
    const parts = path.split('/').map((p) => {
      try {
        return decodeURIComponent(p);
      } catch (e) {
        return p;
      }
    });
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('current', a.dataset.nav === parts[0]);
    const mine = gen;
    loadScopes()
      .then(() => {
        if (mine !== gen) return;
        if (parts[0] === 'campaigns' && parts[1]) return pageCampaign(parts[1]);
        if (parts[0] === 'conversations' && parts[1]) return pageConversation(parts[1]);
        if (parts[0] === 'conversations') return pageConversations();
        if (parts[0] === 'operations') return pageOperations();
        return pageCampaigns();
      })
      .catch((e) => {
        if (e.status === 401) renderGate(e.message);
        else fill(main, errorBox(e));
      });
    main.focus({ preventScroll: true });
  }

  signout.addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    scopes = null;
    route();
  });
  window.addEventListener('hashchange', () => {
    takeFragmentToken();
    route();
  });
  takeFragmentToken();
  route();
})();
