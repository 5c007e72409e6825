// groups.js: every consumer group with its state, members, topics and total lag.
import { h, clear, card, table, badge } from '../dom.js';
import { get, enc } from '../api.js';
import { num } from '../format.js';

export function stateBadge(state) {
  const kind = { Stable: 'ok', Empty: '', Dead: 'bad', PreparingRebalance: 'warn', CompletingRebalance: 'warn', Reconciling: 'warn', Assigning: 'warn' }[state];
  return badge(state || 'unknown', kind);
}

export async function groupsPage(ctx) {
  const groups = await get('/api/groups');
  if (!ctx.isCurrent()) return;
  const el = clear(ctx.el);
  const search = h('input', { type: 'search', class: 'search', placeholder: 'Filter groups by name', 'aria-label': 'Filter groups' });
  const holder = h('div');
  const cols = [
    { label: 'Group', sort: g => g.name, cls: 'wrap', render: g => h('a', { href: '#/groups/' + enc(g.name) }, g.name) },
    { label: 'State', sort: g => g.state, render: g => g.error ? badge(g.error, 'bad') : stateBadge(g.state) },
    { label: 'Type', sort: g => g.type, render: g => [g.type || 'classic', g.protocol ? h('span', { class: 'sub' }, ' · ' + g.protocol) : null] },
    { label: 'Members', num: true, sort: g => g.members.length, render: g => num(g.members.length) },
    { label: 'Topics', cls: 'wrap', render: g => g.topics.length ? g.topics.join(', ') : h('span', { class: 'muted' }, '–') },
    { label: 'Lag', num: true, sort: g => g.totalLag, render: g => h('span', { dataset: { test: 'group-lag' } }, num(g.totalLag)) },
    { label: 'Coordinator', num: true, sort: g => g.coordinator, render: g => String(g.coordinator) },
  ];
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    clear(holder).append(table(cols, groups.filter(g => g.name.toLowerCase().includes(q)), {
      sortBy: 0, empty: groups.length ? 'No group matches.' : 'No consumer groups yet.',
      rowAttrs: g => ({ dataset: { group: g.name } }),
    }));
  };
  search.addEventListener('input', draw);
  const lagging = groups.filter(g => g.totalLag > 0).length;
  el.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Consumer groups'),
    h('div', { class: 'sub' }, `${num(groups.length)} groups, ${num(lagging)} with lag`))));
  el.append(card('All groups', null, h('div', { class: 'toolbar' }, search), holder));
  draw();
}
