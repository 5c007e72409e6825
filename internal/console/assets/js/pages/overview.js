// overview.js: the cluster at a glance: counts, the brokers with what they lead and store,
// and the metadata quorum (or why it cannot be shown).
import { h, clear, card, tile, table, badge, alertBox } from '../dom.js';
import { get } from '../api.js';
import { num, bytes, ago } from '../format.js';

export async function overviewPage(ctx) {
  const c = await get('/api/cluster');
  if (!ctx.isCurrent()) return;
  const el = clear(ctx.el);
  el.append(h('div', { class: 'page-head' },
    h('div', {},
      h('h1', {}, 'Cluster'),
      h('div', { class: 'sub' },
        h('span', {}, 'ID ', h('code', { dataset: { test: 'cluster-id' } }, c.clusterId || '(none)')),
        h('span', {}, 'controller ', h('code', {}, c.controller >= 0 ? String(c.controller) : 'none')),
        h('span', {}, 'brokers from ' + c.brokersFrom)))));

  el.append(h('div', { class: 'tiles' },
    tile('Brokers', num(c.brokers.length)),
    tile('Topics', num(c.topics)),
    tile('Partitions', num(c.partitions)),
    tile('Under-replicated', num(c.underReplicated), c.underReplicated > 0),
    tile('Offline', num(c.offline), c.offline > 0),
    tile('Stored', c.sizeBytes === null ? '–' : bytes(c.sizeBytes))));

  if (c.logDirsError) el.append(alertBox('warn', 'Log dir sizes unavailable: ' + c.logDirsError));

  const brokerCols = [
    { label: 'ID', num: true, sort: b => b.id, render: b => h('span', {}, String(b.id), b.controller ? [' ', badge('controller', 'info')] : null) },
    { label: 'Address', cls: 'mono', sort: b => b.host + ':' + b.port, render: b => b.host + ':' + b.port },
    { label: 'Rack', render: b => b.rack || h('span', { class: 'muted' }, '–') },
    { label: 'Status', render: b => b.fenced ? badge('fenced', 'bad') : badge('online', 'ok') },
    { label: 'Leader of', num: true, sort: b => b.leaders, render: b => num(b.leaders) },
    { label: 'Replicas', num: true, sort: b => b.replicas, render: b => num(b.replicas) },
    { label: 'Stored', num: true, sort: b => b.sizeBytes ?? -1, render: b => bytes(b.sizeBytes) },
    {
      label: 'Log dirs', cls: 'wrap', render: b => b.logDirs.length === 0 ? h('span', { class: 'muted' }, '–') : b.logDirs.map(d =>
        h('div', {}, h('code', {}, d.dir), ' ', d.error ? badge(d.error, 'bad') :
          h('span', { class: 'sub' }, bytes(d.sizeBytes) + (d.usableBytes >= 0 ? ' · ' + bytes(d.usableBytes) + ' free of ' + bytes(d.totalBytes) : ''))))
    },
  ];
  el.append(card('Brokers', c.brokers.length + ' known', table(brokerCols, c.brokers, { sortBy: 0, rowAttrs: b => ({ dataset: { broker: b.id } }) })));

  if (c.quorum) {
    const q = c.quorum;
    const cols = [
      { label: 'Node', num: true, sort: r => r.id, render: r => h('span', {}, String(r.id), r.id === q.leaderId ? [' ', badge('leader', 'info')] : null) },
      { label: 'Log end offset', num: true, render: r => num(r.logEndOffset) },
      { label: 'Lag', num: true, render: r => r.lag > 0 ? h('span', { class: 'badge warn' }, num(r.lag)) : '0' },
      { label: 'Last fetch', render: r => ago(r.lastFetchTimestamp) },
      { label: 'Last caught up', render: r => ago(r.lastCaughtUpTimestamp) },
    ];
    el.append(card('Metadata quorum', `leader ${q.leaderId} · epoch ${q.leaderEpoch} · high watermark ${num(q.highWatermark)}`,
      h('div', { class: 'card-body' }, h('h2', {}, 'Voters')), table(cols, q.voters),
      q.observers.length ? [h('div', { class: 'card-body' }, h('h2', {}, 'Observers')), table(cols, q.observers)] : null));
  } else {
    el.append(card('Metadata quorum', null, h('div', { class: 'card-body muted', dataset: { test: 'quorum-unavailable' } }, c.quorumUnavailable || 'Not available.')));
  }
}
