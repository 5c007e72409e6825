// group.js: one consumer group: members and their assignments, committed offsets and lag
// per partition, and resetting the offsets (a preview of the new offsets, then a
// confirmation), which the cluster allows only while the group has no members.
import { h, clear, card, table, badge, dialog, field, toast, tile } from '../dom.js';
import { get, post, enc } from '../api.js';
import { num } from '../format.js';
import { stateBadge } from './groups.js';

export async function groupPage(ctx) {
  const name = decodeURIComponent(ctx.match[1]);
  const g = await get('/api/groups/' + enc(name));
  if (!ctx.isCurrent()) return;
  const el = clear(ctx.el);
  const active = g.members.length > 0;
  const reset = h('button', { class: 'btn', type: 'button', id: 'reset-offsets', on: { click: () => resetOffsets(g) } }, 'Reset offsets');
  if (active) {
    reset.disabled = true;
    reset.title = 'Stop the group’s members first: a live member would overwrite the new offsets';
  }
  el.append(h('div', { class: 'page-head' },
    h('div', {},
      h('h1', { class: 'wrap' }, g.name),
      h('div', { class: 'sub' }, stateBadge(g.state), h('span', {}, (g.type || 'classic') + ' group'),
        g.protocol ? h('span', {}, 'assignor ' + g.protocol) : null, h('span', {}, 'coordinator ' + g.coordinator))),
    h('div', { class: 'actions' }, reset)));
  if (g.error) el.append(h('div', { class: 'alert error' }, g.error));
  el.append(h('div', { class: 'tiles' },
    tile('Members', num(g.members.length)),
    tile('Topics', num(g.topics.length)),
    tile('Partitions', num(g.offsets.length)),
    h('div', { class: 'tile' }, h('div', { class: 'label' }, 'Total lag'), h('div', { class: 'value', dataset: { test: 'total-lag' } }, num(g.totalLag)))));

  const memberCols = [
    { label: 'Member', cls: 'mono wrap', sort: m => m.id, render: m => [m.id, m.instanceId ? h('div', { class: 'sub' }, 'instance ' + m.instanceId) : null] },
    { label: 'Client ID', sort: m => m.clientId, render: m => m.clientId },
    { label: 'Host', cls: 'mono', render: m => m.host },
    {
      label: 'Assigned', cls: 'wrap', render: m => m.assignment.length === 0 ? h('span', { class: 'muted' }, 'nothing') :
        m.assignment.map(a => h('div', {}, h('code', {}, a.topic), ' ', h('span', { class: 'sub' }, a.partitions.join(', '))))
    },
  ];
  el.append(card('Members', active ? null : 'none: the group is not consuming', table(memberCols, g.members, { sortBy: 0, empty: 'No active members.' })));

  const owner = new Map(g.members.map(m => [m.id, m]));
  const offsetCols = [
    { label: 'Topic', sort: o => o.topic + '\u0000' + String(o.partition).padStart(10, '0'), render: o => h('a', { href: '#/topics/' + enc(o.topic) }, o.topic) },
    { label: 'Partition', num: true, sort: o => o.partition, render: o => String(o.partition) },
    { label: 'Committed', num: true, render: o => o.committed === null ? h('span', { class: 'muted' }, 'none') : num(o.committed) },
    { label: 'Log start', num: true, render: o => num(o.logStartOffset) },
    { label: 'High watermark', num: true, render: o => num(o.highWatermark) },
    {
      label: 'Lag', num: true, sort: o => o.lag ?? -1, render: o => o.lag === null ? badge(o.error || 'unknown', 'bad') :
        h('span', { class: o.lag > 0 ? 'badge warn' : null, dataset: { test: 'lag' } }, num(o.lag))
    },
    {
      label: 'Member', cls: 'mono wrap', render: o => {
        if (!o.memberId) return h('span', { class: 'muted' }, '–');
        const m = owner.get(o.memberId);
        return m ? m.clientId + ' (' + m.host + ')' : o.memberId;
      }
    },
  ];
  el.append(card('Offsets and lag', 'lag = high watermark − committed offset',
    table(offsetCols, g.offsets, {
      sortBy: 0, empty: 'The group has committed no offsets.',
      rowAttrs: o => ({ dataset: { topic: o.topic, partition: o.partition } }),
    })));
}

async function resetOffsets(g) {
  const mode = h('select', { id: 'reset-mode' },
    [['earliest', 'Earliest (log start)'], ['latest', 'Latest (high watermark)'], ['offset', 'A specific offset'], ['time', 'A point in time']]
      .map(([v, l]) => h('option', { value: v }, l)));
  const offset = h('input', { type: 'number', id: 'reset-offset', min: '0', value: '0' });
  const when = h('input', { type: 'datetime-local', id: 'reset-time', step: '1' });
  const offsetField = field('Offset (clamped to each partition’s range)', offset, 'full');
  const timeField = field('Time (local): the first offset at or after it', when, 'full');
  const show = () => { offsetField.hidden = mode.value !== 'offset'; timeField.hidden = mode.value !== 'time'; };
  mode.addEventListener('change', show);
  show();
  const boxes = g.topics.map(t => h('input', { type: 'checkbox', checked: true, dataset: { topic: t } }));
  let req = null;
  let plan = null;
  const step = await dialog({
    title: 'Reset offsets of ' + g.name,
    body: h('div', { class: 'form-grid' },
      field('Move the committed offsets to', mode, 'full'), offsetField, timeField,
      h('div', { class: 'full' }, h('div', { class: 'muted' }, 'Topics'),
        boxes.length ? boxes.map((b, i) => h('label', { class: 'check' }, b, g.topics[i])) : h('div', { class: 'muted' }, 'The group has no committed offsets.'))),
    buttons: [
      { label: 'Cancel', value: 'cancel' },
      {
        label: 'Preview', value: 'preview', kind: 'primary', action: async () => {
          req = { mode: mode.value, topics: boxes.filter(b => b.checked).map(b => b.dataset.topic), execute: false };
          if (req.topics.length === 0) throw new Error('Pick at least one topic.');
          if (mode.value === 'offset') req.offset = Number(offset.value || 0);
          if (mode.value === 'time') {
            const ms = new Date(when.value).getTime();
            if (!when.value || isNaN(ms)) throw new Error('Pick a date and time.');
            req.timeMs = ms;
          }
          plan = await post('/api/groups/' + enc(g.name) + '/reset-offsets', req);
        }
      },
    ],
  });
  if (step !== 'preview') return;
  const cols = [
    { label: 'Topic', render: r => r.topic },
    { label: 'Partition', num: true, render: r => String(r.partition) },
    { label: 'Current', num: true, render: r => r.current === null ? 'none' : num(r.current) },
    { label: 'New', num: true, render: r => h('strong', {}, num(r.new)) },
  ];
  const ok = await dialog({
    title: 'Apply these offsets?',
    wide: true,
    body: h('div', {}, h('p', {}, `Group `, h('code', {}, g.name), ` will resume from these offsets on ${plan.offsets.length} partition${plan.offsets.length === 1 ? '' : 's'}:`),
      table(cols, plan.offsets)),
    buttons: [
      { label: 'Back', value: 'cancel' },
      { label: 'Reset offsets', value: 'apply', kind: 'danger', action: () => post('/api/groups/' + enc(g.name) + '/reset-offsets', { ...req, execute: true }) },
    ],
  });
  if (ok === null || ok === 'cancel') return;
  toast(`Reset the offsets of ${g.name} on ${plan.offsets.length} partitions`);
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}
