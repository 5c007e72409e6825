// app.js is the console's entry point: a hash router (#/topics/NAME/messages) that renders
// one page at a time into #page, the breadcrumbs, and the Refresh button.
import { h, clear, alertBox } from './dom.js';
import { get } from './api.js';
import { overviewPage } from './pages/overview.js';
import { topicsPage } from './pages/topics.js';
import { topicPage } from './pages/topic.js';
import { groupsPage } from './pages/groups.js';
import { groupPage } from './pages/group.js';
import { throughputPage } from './pages/throughput.js';

const routes = [
  { re: /^\/?$/, nav: 'overview', page: () => overviewPage, crumbs: () => [['Overview']] },
  { re: /^\/topics$/, nav: 'topics', page: () => topicsPage, crumbs: () => [['Topics']] },
  {
    re: /^\/topics\/([^/]+)(?:\/(partitions|messages|configs))?$/, nav: 'topics', page: () => topicPage,
    crumbs: m => [['Topics', '#/topics'], [decodeURIComponent(m[1])]],
  },
  { re: /^\/groups$/, nav: 'groups', page: () => groupsPage, crumbs: () => [['Consumer groups']] },
  {
    re: /^\/groups\/([^/]+)$/, nav: 'groups', page: () => groupPage,
    crumbs: m => [['Consumer groups', '#/groups'], [decodeURIComponent(m[1])]],
  },
  { re: /^\/throughput$/, nav: 'throughput', page: () => throughputPage, crumbs: () => [['Throughput']] },
];

let cleanup = null;
let generation = 0;

// ctx is what a page gets: its route match, the element to fill, and isCurrent() to
// tell whether the user has moved on while it was loading.
async function render() {
  const path = location.hash.replace(/^#/, '') || '/';
  const page = document.getElementById('page');
  if (cleanup) { cleanup(); cleanup = null; }
  const gen = ++generation;
  clear(page);
  let route = null;
  let m = null;
  for (const r of routes) { m = path.match(r.re); if (m) { route = r; break; } }
  for (const a of document.querySelectorAll('.sidebar a.nav')) a.classList.toggle('active', route?.nav === a.dataset.nav);
  const crumbs = clear(document.getElementById('crumbs'));
  if (!route) {
    crumbs.append(h('span', {}, 'Not found'));
    page.append(alertBox('error', 'No page at ' + path + '. ', h('a', { href: '#/' }, 'Go to the overview.')));
    return;
  }
  route.crumbs(m).forEach(([label, href], i) => {
    if (i > 0) crumbs.append(h('span', { class: 'sep' }, '/'));
    crumbs.append(href ? h('a', { href }, label) : h('span', {}, label));
  });
  const ctx = { match: m, el: page, isCurrent: () => gen === generation, onLeave: fn => { if (gen === generation) cleanup = fn; else fn(); } };
  page.append(h('div', { class: 'loading' }, 'Loading…'));
  try {
    await route.page()(ctx);
  } catch (e) {
    if (!ctx.isCurrent()) return;
    clear(page);
    page.append(alertBox('error', e.message || String(e)));
  }
}

async function clusterName() {
  try {
    const c = await get('/api/cluster');
    document.getElementById('cluster-id').textContent = 'cluster ' + (c.clusterId || '(no id)') + ' · ' + c.brokers.length + ' broker' + (c.brokers.length === 1 ? '' : 's');
  } catch {
    document.getElementById('cluster-id').textContent = 'cluster unreachable';
  }
}

window.addEventListener('hashchange', render);
document.getElementById('refresh').addEventListener('click', () => { render(); clusterName(); });
render();
clusterName();
