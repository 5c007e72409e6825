// dom.js builds the page from elements and text nodes only: nothing from the cluster is
// ever parsed as HTML (no innerHTML), so a record, topic or group name cannot inject
// markup or script.

// h creates an element. attrs: class, text, on{event: fn}, dataset{...}, and any other
// property or attribute; children: nodes, strings (as text), arrays, null/false (skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function badge(text, kind) {
  return h('span', { class: 'badge' + (kind ? ' ' + kind : '') }, text);
}

export function alertBox(kind, ...children) {
  return h('div', { class: 'alert ' + kind, role: kind === 'error' ? 'alert' : null }, ...children);
}

export function card(title, note, ...body) {
  return h('div', { class: 'card' },
    h('div', { class: 'card-head' }, h('h2', {}, title), note ? h('div', { class: 'note' }, note) : null),
    ...body);
}

export function tile(label, value, bad) {
  return h('div', { class: 'tile' + (bad ? ' bad' : '') }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
}

// table renders rows with columns {label, key?, num?, cls?, render(row) -> node|string,
// sort(row) -> value}; clicking a sortable header sorts by it. opts.rowAttrs(row) adds
// attributes to each row; opts.empty is shown when there are no rows.
export function table(columns, rows, opts = {}) {
  const wrap = h('div', { class: 'table-wrap' });
  let sortCol = opts.sortBy ?? -1;
  let dir = opts.sortDir ?? 1;
  const draw = () => {
    clear(wrap);
    if (rows.length === 0) {
      wrap.append(h('div', { class: 'empty' }, opts.empty || 'Nothing to show.'));
      return;
    }
    const sorted = rows.slice();
    if (sortCol >= 0 && columns[sortCol].sort) {
      const f = columns[sortCol].sort;
      sorted.sort((a, b) => {
        const x = f(a), y = f(b);
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
    }
    const head = h('tr', {}, columns.map((c, i) => {
      const th = h('th', { class: (c.num ? 'num ' : '') + (c.sort ? 'sortable' : ''), scope: 'col' }, c.label);
      if (c.sort) {
        if (i === sortCol) th.append(h('span', { class: 'arrow' }, dir > 0 ? '▲' : '▼'));
        th.addEventListener('click', () => {
          if (sortCol === i) dir = -dir; else { sortCol = i; dir = 1; }
          draw();
        });
      }
      return th;
    }));
    const body = h('tbody');
    for (const r of sorted) {
      const tr = h('tr', opts.rowAttrs ? opts.rowAttrs(r) : {}, columns.map(c => {
        const v = c.render ? c.render(r) : r[c.key];
        return h('td', { class: [c.num ? 'num' : '', c.cls || ''].join(' ').trim() || null }, v ?? '');
      }));
      body.append(tr);
      if (opts.after) { const extra = opts.after(r, tr); if (extra) body.append(extra); }
    }
    wrap.append(h('table', {}, h('thead', {}, head), body));
  };
  draw();
  return wrap;
}

// toast shows a short message at the bottom of the page for a few seconds.
let toastTimer = 0;
export function toast(msg) {
  const el = document.getElementById('toast');
  el.textContent = msg;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// dialog opens the page's <dialog> with a title, a body and buttons, and resolves with
// the value of the button pressed (or null when closed with Escape). A button with
// action(returnValue) -> Promise keeps the dialog open while it runs and shows its error
// in the dialog instead of closing.
export function dialog({ title, body, buttons, wide }) {
  const dlg = document.getElementById('dialog');
  clear(dlg);
  dlg.className = wide ? 'wide' : '';
  const err = h('div', { class: 'dlg-error' });
  return new Promise(resolve => {
    let done = false;
    const finish = v => {
      if (done) return;
      done = true;
      dlg.close();
      resolve(v);
    };
    const btns = buttons.map(b => {
      const el = h('button', { class: 'btn ' + (b.kind || ''), type: 'button', dataset: { action: b.value } }, b.label);
      if (b.disabled) el.disabled = true;
      el.addEventListener('click', async () => {
        if (!b.action) { finish(b.value); return; }
        clear(err);
        for (const x of btns) x.disabled = true;
        try {
          const v = await b.action();
          if (v !== false) finish(v === undefined ? b.value : v);
        } catch (e) {
          err.append(alertBox('error', e.message));
        } finally {
          for (const x of btns) x.disabled = x.dataset.locked === 'true';
        }
      });
      return el;
    });
    dlg.append(
      h('div', { class: 'dlg-head' }, h('h2', {}, title)),
      h('div', { class: 'dlg-body' }, body),
      err,
      h('div', { class: 'dlg-foot' }, btns));
    // Escape closes the dialog as Cancel would. (Not the close event: it is queued, and
    // a dialog opened right after this one closed would receive it.)
    dlg.oncancel = ev => { ev.preventDefault(); finish(null); };
    dlg.showModal();
    const first = dlg.querySelector('input, select, textarea');
    if (first) first.focus();
  });
}

// lockButton keeps a dialog button disabled until unlocked (type-the-name confirmations).
export function lockButton(value, locked) {
  const b = document.querySelector(`#dialog button[data-action="${value}"]`);
  if (!b) return;
  b.dataset.locked = locked ? 'true' : 'false';
  b.disabled = locked;
}

// field wraps a form control with its label.
export function field(label, control, extra) {
  return h('label', { class: 'field' + (extra ? ' ' + extra : '') }, label, control);
}
