// messages.js: the message browser of one topic. The form picks partitions, where to
// start (oldest, newest, an offset, a time), how many records and a text filter; each
// record shows its key and value as text, pretty JSON or hex, and its headers. Record
// bytes only ever reach the page as text nodes.
import { h, clear, table, badge, alertBox } from '../dom.js';
import { get, enc } from '../api.js';
import { num, bytes, time, b64, render, preview } from '../format.js';

// The form's state survives switching tabs and refreshing, per topic.
const saved = new Map();

export function messagesTab(el, t, ctx) {
  const st = saved.get(t.name) || { partition: '-1', start: 'oldest', offset: '0', time: '', limit: '50', filter: '', format: 'auto' };
  saved.set(t.name, st);
  const sel = (id, opts, value) => h('select', { id }, opts.map(([v, label]) => {
    const o = h('option', { value: v }, label);
    if (v === value) o.selected = true;
    return o;
  }));
  const partition = sel('msg-partition', [['-1', 'All partitions'], ...t.partitionList.map(p => [String(p.partition), 'Partition ' + p.partition])], st.partition);
  const start = sel('msg-start', [['oldest', 'Oldest'], ['newest', 'Newest'], ['offset', 'Offset'], ['time', 'Timestamp']], st.start);
  const offset = h('input', { type: 'number', id: 'msg-offset', min: '0', value: st.offset, class: 'narrow' });
  const when = h('input', { type: 'datetime-local', id: 'msg-time', step: '1', value: st.time });
  const limit = h('input', { type: 'number', id: 'msg-limit', min: '1', max: '500', value: st.limit });
  const filter = h('input', { type: 'search', id: 'msg-filter', placeholder: 'key, value or header contains…', value: st.filter });
  const format = sel('msg-format', [['auto', 'Auto'], ['text', 'Text'], ['json', 'JSON'], ['hex', 'Hex']], st.format);
  const go = h('button', { class: 'btn primary', type: 'submit', id: 'msg-fetch' }, 'Fetch');
  const offsetField = h('label', { class: 'field' }, 'Offset', offset);
  const timeField = h('label', { class: 'field' }, 'From (local time)', when);
  const showWhere = () => {
    offsetField.hidden = start.value !== 'offset';
    timeField.hidden = start.value !== 'time';
  };
  start.addEventListener('change', showWhere);
  showWhere();
  const status = h('div', { class: 'msg-status', hidden: true });
  const results = h('div');
  let last = null;
  const draw = () => { if (last) drawRecords(results, last, format.value, t); };
  format.addEventListener('change', () => { st.format = format.value; draw(); });

  const fetchRecords = async () => {
    Object.assign(st, { partition: partition.value, start: start.value, offset: offset.value, time: when.value, limit: limit.value, filter: filter.value });
    const q = new URLSearchParams({ partition: partition.value, start: start.value, limit: limit.value || '50' });
    if (start.value === 'offset') q.set('offset', offset.value || '0');
    if (start.value === 'time') {
      const ms = new Date(when.value).getTime();
      if (!when.value || isNaN(ms)) {
        clear(results).append(alertBox('error', 'Pick a date and time to start from.'));
        return;
      }
      q.set('time', String(ms));
    }
    if (filter.value) q.set('filter', filter.value);
    go.disabled = true;
    clear(results).append(h('div', { class: 'loading' }, 'Fetching…'));
    try {
      const res = await get('/api/topics/' + enc(t.name) + '/messages?' + q);
      if (!ctx.isCurrent()) return;
      last = res;
      drawStatus(status, res);
      draw();
    } catch (e) {
      status.hidden = true;
      clear(results).append(alertBox('error', e.message));
    } finally {
      go.disabled = false;
    }
  };
  const form = h('form', { class: 'toolbar', id: 'msg-form', on: { submit: ev => { ev.preventDefault(); fetchRecords(); } } },
    h('label', { class: 'field' }, 'Partition', partition),
    h('label', { class: 'field' }, 'Start from', start),
    offsetField, timeField,
    h('label', { class: 'field' }, 'Max records', limit),
    h('label', { class: 'field grow' }, 'Filter', filter),
    h('label', { class: 'field' }, 'Show as', format),
    go);
  el.append(h('div', { class: 'card' }, form, status, results));
  fetchRecords();
}

const why = {
  end: 'reached the high watermark',
  limit: 'reached the record limit',
  bytes: 'reached the byte limit of one request',
  'scan-limit': 'stopped scanning at the scan limit: narrow the filter or start later',
  timeout: 'stopped at the request timeout',
};

function drawStatus(el, res) {
  el.hidden = false;
  clear(el).append(
    h('span', { dataset: { test: 'msg-count' } }, `${num(res.records.length)} record${res.records.length === 1 ? '' : 's'}`),
    h('span', {}, `scanned ${num(res.scanned)} (${bytes(res.scannedBytes)})`),
    h('span', {}, why[res.stoppedBy] || res.stoppedBy),
    res.partitions.filter(p => p.error).map(p => badge(`partition ${p.partition}: ${p.error}`, 'bad')));
}

function drawRecords(el, res, format, t) {
  clear(el);
  const multi = t.partitionList.length > 1;
  const decoded = res.records.map(r => ({ ...r, k: b64(r.key), v: b64(r.value) }));
  const cols = [
    multi ? { label: 'Partition', num: true, render: r => String(r.partition) } : null,
    { label: 'Offset', num: true, render: r => String(r.offset) },
    { label: 'Timestamp', cls: 'mono', render: r => time(r.timestamp) },
    { label: 'Key', cls: 'key', render: r => r.k === null ? h('span', { class: 'null' }, 'null') : preview(r.k, format, 80) },
    {
      label: 'Value', cls: 'preview', render: r => r.v === null ? h('span', { class: 'null' }, 'null (tombstone)') :
        h('span', {}, preview(r.v, format), r.truncated ? [' ', badge('cut', 'warn')] : null)
    },
    { label: 'Headers', num: true, render: r => r.headers.length ? String(r.headers.length) : '' },
  ].filter(Boolean);
  el.append(table(cols, decoded, {
    empty: 'No records match.',
    rowAttrs: r => ({ class: 'msg-row', dataset: { partition: r.partition, offset: r.offset }, title: 'Click to show the whole record' }),
    after: (r, tr) => {
      const detail = h('tr', { class: 'msg-detail', hidden: true, dataset: { partition: r.partition, offset: r.offset } },
        h('td', { colSpan: cols.length }));
      tr.addEventListener('click', () => {
        const open = detail.hidden;
        if (open && !detail.firstChild.firstChild) detail.firstChild.append(recordDetail(r, format));
        detail.hidden = !open;
        tr.classList.toggle('open', open);
      });
      return detail;
    },
  }));
}

function payload(u8, format, testName) {
  if (u8 === null) return h('pre', { class: 'payload', dataset: { test: testName, format: 'null' } }, h('span', { class: 'null' }, 'null'));
  const r = render(u8, format);
  // Keys are mostly plain strings: a key that is not JSON needs no remark.
  if (testName === 'key' && r.as === 'text') r.note = null;
  return h('div', {},
    h('pre', { class: 'payload' + (r.as === 'hex' ? ' hex' : ''), dataset: { test: testName, format: r.as } }, r.text),
    r.note ? h('div', { class: 'muted' }, r.note) : null);
}

function recordDetail(r, format) {
  const headers = r.headers.length === 0 ? h('div', { class: 'muted' }, 'none') :
    h('table', { class: 'headers-table' }, h('tbody', {}, r.headers.map(hd => {
      const v = b64(hd.value);
      return h('tr', {}, h('td', {}, hd.key), h('td', { dataset: { test: 'header-value' } }, v === null ? h('span', { class: 'null' }, 'null') : render(v, format === 'hex' ? 'hex' : 'text').text));
    })));
  return h('div', {},
    h('div', { class: 'detail-grid' },
      h('div', {}, h('h3', {}, `Key · ${bytes(r.keySize)}`), payload(r.k, format, 'key'),
        h('h3', { class: 'spaced' }, 'Headers'), headers),
      h('div', {}, h('h3', {}, `Value · ${bytes(r.valueSize)}`), payload(r.v, format, 'value'))),
    h('div', { class: 'meta-line' },
      h('span', {}, `partition ${r.partition}`), h('span', {}, `offset ${r.offset}`),
      h('span', {}, `${r.timestampType} time ${time(r.timestamp)} (${r.timestamp})`),
      h('span', {}, `leader epoch ${r.leaderEpoch}`),
      r.truncated ? badge('cut to the byte limit of one request', 'warn') : null));
}
