// topics.js: every topic with its partitions, replication, records and size, a name
// filter, and the create-topic dialog (a form, then a review to confirm).
import { h, clear, card, table, badge, dialog, field, toast, alertBox } from '../dom.js';
import { get, post, enc } from '../api.js';
import { num, bytes } from '../format.js';

export async function topicsPage(ctx) {
  const topics = await get('/api/topics');
  if (!ctx.isCurrent()) return;
  const el = clear(ctx.el);
  const showInternal = h('input', { type: 'checkbox', id: 'show-internal' });
  const search = h('input', { type: 'search', class: 'search', placeholder: 'Filter topics by name', 'aria-label': 'Filter topics' });
  const holder = h('div');
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = topics.filter(t => (showInternal.checked || !t.internal) && t.name.toLowerCase().includes(q));
    clear(holder).append(table(columns, rows, {
      sortBy: 0,
      empty: topics.length ? 'No topic matches.' : 'This cluster has no topics yet.',
      rowAttrs: t => ({ dataset: { topic: t.name } }),
    }));
  };
  search.addEventListener('input', draw);
  showInternal.addEventListener('change', draw);
  const internal = topics.filter(t => t.internal).length;
  el.append(h('div', { class: 'page-head' },
    h('div', {}, h('h1', {}, 'Topics'),
      h('div', { class: 'sub' }, `${num(topics.length - internal)} topics` + (internal ? `, ${internal} internal` : ''))),
    h('div', { class: 'actions' }, h('button', { class: 'btn primary', type: 'button', id: 'create-topic', on: { click: () => createTopic() } }, 'Create topic'))));
  el.append(card('All topics', null,
    h('div', { class: 'toolbar' }, search, h('label', { class: 'check' }, showInternal, 'Show internal topics')),
    holder));
  draw();
}

const columns = [
  {
    label: 'Name', sort: t => t.name, cls: 'wrap', render: t => h('span', {},
      h('a', { href: '#/topics/' + enc(t.name) }, t.name), t.internal ? [' ', badge('internal')] : null)
  },
  { label: 'Partitions', num: true, sort: t => t.partitions, render: t => num(t.partitions) },
  { label: 'Replicas', num: true, sort: t => t.replicationFactor, render: t => num(t.replicationFactor) },
  { label: 'Records', num: true, sort: t => t.records, render: t => num(t.records) },
  { label: 'Size', num: true, sort: t => t.sizeBytes ?? -1, render: t => bytes(t.sizeBytes) },
  {
    label: 'Health', sort: t => t.offline * 1e6 + t.underReplicated, render: t => t.error ? badge(t.error, 'bad') :
      t.offline ? badge(t.offline + ' offline', 'bad') : t.underReplicated ? badge(t.underReplicated + ' under-replicated', 'warn') : badge('healthy', 'ok')
  },
];

// parseConfigs reads "key=value" lines; blank lines and # comments are skipped.
export function parseConfigs(s) {
  const out = {};
  for (const [i, raw] of s.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`line ${i + 1}: want key=value, got "${line}"`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

async function createTopic() {
  const name = h('input', { type: 'text', id: 'new-topic-name', required: true, placeholder: 'orders.v1', autocomplete: 'off' });
  const parts = h('input', { type: 'number', id: 'new-topic-partitions', min: '1', placeholder: 'broker default' });
  const rf = h('input', { type: 'number', id: 'new-topic-rf', min: '1', placeholder: 'broker default' });
  const cfgs = h('textarea', { id: 'new-topic-configs', placeholder: 'retention.ms=604800000\ncleanup.policy=delete' });
  let req = null;
  const review = await dialog({
    title: 'Create topic',
    body: h('div', { class: 'form-grid' },
      field('Name', name, 'full'), field('Partitions', parts), field('Replication factor', rf),
      field('Configs (one key=value per line, optional)', cfgs, 'full')),
    buttons: [
      { label: 'Cancel', value: 'cancel' },
      {
        label: 'Review', value: 'review', kind: 'primary', action: async () => {
          if (!name.value.trim()) throw new Error('Give the topic a name.');
          req = {
            name: name.value.trim(),
            partitions: parts.value ? Number(parts.value) : -1,
            replicationFactor: rf.value ? Number(rf.value) : -1,
            configs: parseConfigs(cfgs.value),
          };
        }
      },
    ],
  });
  if (review !== 'review') return;
  const cfgRows = Object.entries(req.configs);
  const ok = await dialog({
    title: 'Create this topic?',
    body: h('div', {},
      h('dl', { class: 'summary' },
        h('dt', {}, 'Name'), h('dd', {}, req.name),
        h('dt', {}, 'Partitions'), h('dd', {}, req.partitions < 0 ? 'broker default' : String(req.partitions)),
        h('dt', {}, 'Replication factor'), h('dd', {}, req.replicationFactor < 0 ? 'broker default' : String(req.replicationFactor)),
        h('dt', {}, 'Configs'), h('dd', {}, cfgRows.length ? cfgRows.map(([k, v]) => h('div', {}, k + '=' + v)) : 'broker defaults'))),
    buttons: [
      { label: 'Back', value: 'cancel' },
      { label: 'Create topic', value: 'create', kind: 'primary', action: () => post('/api/topics', req) },
    ],
  });
  if (ok === null || ok === 'cancel') return;
  toast(`Created topic ${req.name}`);
  location.hash = '#/topics/' + enc(req.name);
}

export function errorBox(e) {
  return alertBox('error', e.message || String(e));
}
