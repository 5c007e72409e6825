// topic.js: one topic: partitions (leader, replicas, ISR, offsets, size), the message
// browser, and configs with editing; deleting the topic asks for its name first.
import { h, clear, card, table, badge, dialog, lockButton, field, toast, tile } from '../dom.js';
import { get, post, enc } from '../api.js';
import { num, bytes } from '../format.js';
import { messagesTab } from './messages.js';

export async function topicPage(ctx) {
  const name = decodeURIComponent(ctx.match[1]);
  const tab = ctx.match[2] || 'partitions';
  const t = await get('/api/topics/' + enc(name));
  if (!ctx.isCurrent()) return;
  const el = clear(ctx.el);
  const base = '#/topics/' + enc(name);
  el.append(h('div', { class: 'page-head' },
    h('div', {},
      h('h1', { dataset: { test: 'topic-name' } }, t.name, t.internal ? [' ', badge('internal')] : null),
      h('div', { class: 'sub' },
        t.id ? h('span', {}, 'ID ', h('code', {}, t.id)) : null,
        h('span', {}, `${num(t.partitions)} partition${t.partitions === 1 ? '' : 's'}`),
        h('span', {}, `replication factor ${num(t.replicationFactor)}`))),
    h('div', { class: 'actions' },
      h('button', { class: 'btn danger-outline', type: 'button', id: 'delete-topic', on: { click: () => deleteTopic(t.name) } }, 'Delete topic'))));
  el.append(h('div', { class: 'tiles' },
    tile('Records', num(t.records)),
    tile('Size', bytes(t.sizeBytes)),
    tile('Under-replicated', num(t.underReplicated), t.underReplicated > 0),
    tile('Offline', num(t.offline), t.offline > 0)));
  el.append(h('nav', { class: 'tabs' },
    [['partitions', 'Partitions'], ['messages', 'Messages'], ['configs', 'Configs']].map(([id, label]) =>
      h('a', { href: base + '/' + id, class: tab === id ? 'active' : null, dataset: { tab: id } }, label))));
  const body = h('div');
  el.append(body);
  if (tab === 'messages') messagesTab(body, t, ctx);
  else if (tab === 'configs') configsTab(body, t);
  else partitionsTab(body, t);
}

const ids = a => a.length ? a.join(', ') : '–';

function partitionsTab(el, t) {
  const cols = [
    { label: 'Partition', num: true, sort: p => p.partition, render: p => String(p.partition) },
    { label: 'Leader', num: true, sort: p => p.leader, render: p => p.leader >= 0 ? String(p.leader) : badge('none', 'bad') },
    { label: 'Epoch', num: true, render: p => String(p.leaderEpoch) },
    { label: 'Replicas', cls: 'mono', render: p => ids(p.replicas) },
    {
      label: 'In-sync replicas', cls: 'mono', render: p => h('span', {}, ids(p.isr),
        p.isr.length < p.replicas.length ? [' ', badge('under-replicated', 'warn')] : null)
    },
    { label: 'Log start', num: true, sort: p => p.logStartOffset, render: p => num(p.logStartOffset) },
    { label: 'High watermark', num: true, sort: p => p.highWatermark, render: p => num(p.highWatermark) },
    { label: 'Records', num: true, sort: p => p.records, render: p => num(p.records) },
    { label: 'Size', num: true, sort: p => p.sizeBytes ?? -1, render: p => bytes(p.sizeBytes) },
    { label: '', render: p => p.error ? badge(p.error, 'bad') : null },
  ];
  el.append(card('Partitions', 'offsets and sizes as the leaders report them',
    table(cols, t.partitionList, { sortBy: 0, rowAttrs: p => ({ dataset: { partition: p.partition } }) })));
}

function configsTab(el, t) {
  if (t.configsError) {
    el.append(card('Configs', null, h('div', { class: 'card-body' }, h('div', { class: 'alert error' }, t.configsError))));
    return;
  }
  const all = h('input', { type: 'checkbox', id: 'show-all-configs' });
  const holder = h('div');
  const draw = () => {
    const rows = t.configs.filter(c => all.checked || !c.default);
    clear(holder).append(table([
      {
        label: 'Name', sort: c => c.name, render: c => h('div', {}, h('code', {}, c.name),
          c.doc ? h('div', { class: 'doc' }, c.doc.length > 180 ? c.doc.slice(0, 180) + '…' : c.doc) : null)
      },
      { label: 'Value', cls: 'value-cell', render: c => c.sensitive ? h('span', { class: 'null' }, 'sensitive') : c.value === null ? h('span', { class: 'null' }, 'null') : c.value },
      { label: 'Source', sort: c => c.source, render: c => badge(c.source.toLowerCase().replaceAll('_', ' '), c.default ? '' : 'info') },
      {
        label: '', render: c => c.readOnly ? h('span', { class: 'muted' }, 'read-only') :
          h('button', { class: 'btn small', type: 'button', dataset: { edit: c.name }, on: { click: () => editConfig(t.name, c) } }, 'Edit')
      },
    ], rows, {
      sortBy: 0,
      empty: 'Every config has its default value. Tick “Show defaults” to see them.',
      rowAttrs: c => ({ class: c.default ? null : 'overridden', dataset: { config: c.name } }),
    }));
  };
  all.addEventListener('change', draw);
  const set = t.configs.filter(c => !c.default).length;
  el.append(card('Configs', `${set} set on this topic, ${t.configs.length - set} defaults`,
    h('div', { class: 'toolbar' }, h('label', { class: 'check' }, all, 'Show defaults'),
      h('button', { class: 'btn small', type: 'button', id: 'add-config', on: { click: () => editConfig(t.name, null) } }, 'Set a config')),
    holder));
  draw();
}

// editConfig asks for a new value (or a reset to the default), then confirms the change.
async function editConfig(topic, c) {
  const keyInput = h('input', { type: 'text', id: 'config-name', value: c ? c.name : '', placeholder: 'retention.ms', autocomplete: 'off' });
  if (c) keyInput.readOnly = true;
  const valInput = h('input', { type: 'text', id: 'config-value', value: c && !c.sensitive && c.value !== null ? c.value : '', autocomplete: 'off' });
  let change = null;
  const buttons = [{ label: 'Cancel', value: 'cancel' }];
  if (c && !c.default) {
    buttons.push({ label: 'Reset to default', value: 'reset', action: async () => { change = { delete: [c.name] }; } });
  }
  buttons.push({
    label: 'Review', value: 'review', kind: 'primary', action: async () => {
      const k = keyInput.value.trim();
      if (!k) throw new Error('Name the config.');
      change = { set: { [k]: valInput.value } };
    }
  });
  const step = await dialog({
    title: c ? 'Edit ' + c.name : 'Set a config',
    body: h('div', { class: 'form-grid' }, field('Config', keyInput, 'full'), field('New value', valInput, 'full'),
      c && c.doc ? h('p', { class: 'doc full' }, c.doc) : null),
    buttons,
  });
  if (step !== 'review' && step !== 'reset') return;
  const key = change.set ? Object.keys(change.set)[0] : change.delete[0];
  const oldVal = c && !c.sensitive ? (c.value ?? 'null') : '(not set)';
  const newVal = change.set ? change.set[key] : 'the default';
  const ok = await dialog({
    title: 'Change this config?',
    body: h('div', {},
      h('p', {}, 'Topic ', h('code', {}, topic), ', config ', h('code', {}, key), ':'),
      h('p', { class: 'change' }, h('span', { class: 'old' }, oldVal), '  →  ', h('span', { class: 'new' }, newVal)),
      h('p', { class: 'muted' }, 'The brokers apply it at once (IncrementalAlterConfigs).')),
    buttons: [
      { label: 'Back', value: 'cancel' },
      { label: 'Apply change', value: 'apply', kind: 'primary', action: () => post('/api/topics/' + enc(topic) + '/configs', change) },
    ],
  });
  if (ok === null || ok === 'cancel') return;
  toast(`Changed ${key} of ${topic}`);
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

// deleteTopic asks for the topic's name before deleting it.
async function deleteTopic(name) {
  const input = h('input', { type: 'text', id: 'confirm-topic-name', autocomplete: 'off', placeholder: name });
  input.addEventListener('input', () => lockButton('delete', input.value !== name));
  const p = dialog({
    title: 'Delete topic ' + name + '?',
    body: h('div', {},
      h('div', { class: 'alert error' }, 'This deletes the topic and every record in it, on every broker. It cannot be undone.'),
      field('Type the topic name to confirm', input)),
    buttons: [
      { label: 'Cancel', value: 'cancel' },
      { label: 'Delete topic', value: 'delete', kind: 'danger', action: () => post('/api/topics/' + enc(name) + '/delete', { confirm: input.value }) },
    ],
  });
  lockButton('delete', true);
  const ok = await p;
  if (ok === null || ok === 'cancel') return;
  toast(`Deleted topic ${name}`);
  location.hash = '#/topics';
}
