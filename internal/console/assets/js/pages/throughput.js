// throughput.js: live charts of records in and out and bytes in per second, per topic and
// in total, from the console's sampler (offsets polled over time), redrawn every interval.
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { h, clear, card, table, alertBox } from '../dom.js';
import { get } from '../api.js';
import { rate, time } from '../format.js';

const palette = ['#1d4ed8', '#0f7b3f', '#c2410c', '#7c3aed', '#0e7490', '#b91c1c', '#a16207', '#be185d', '#4d7c0f', '#334155'];

const charts = [
  { key: 'in', title: 'Records in per second', unit: '' },
  { key: 'out', title: 'Records consumed per second (committed by groups)', unit: '' },
  { key: 'bytesIn', title: 'Bytes in per second (log growth)', unit: 'B' },
];

// span says a duration in ms as people do: 5 s, 30 min, 2 h.
function span(ms) {
  if (ms < 60000) return Math.round(ms / 100) / 10 + ' s';
  if (ms < 3600000) return Math.round(ms / 60000) + ' min';
  return Math.round(ms / 360000) / 10 + ' h';
}

export async function throughputPage(ctx) {
  let data = await get('/api/throughput?top=8');
  if (!ctx.isCurrent()) return;
  const el = clear(ctx.el);
  const note = h('div', { class: 'sub' });
  el.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Throughput'), note)));
  const warn = h('div');
  el.append(warn);
  const boxes = charts.map(c => h('div', { class: 'chart', dataset: { chart: c.key } }, h('h3', {}, c.title)));
  el.append(card('Rates', data.intervalMs > 0 ? 'the last ' + span(data.capacity * data.intervalMs) + ' at most' : null, h('div', { class: 'charts' }, boxes)));
  const current = h('div');
  el.append(card('Now', 'the latest sample, per topic', current));

  let plots = [];
  let names = [];
  const width = () => Math.max(320, boxes[0].clientWidth - 24);
  const build = () => {
    for (const p of plots) p.destroy();
    names = Object.keys(data.topics).sort();
    plots = charts.map((c, i) => {
      const value = (u, v) => v === null ? '–' : rate(v, c.unit);
      const series = [{}, { label: 'all topics', stroke: '#0f172a', width: 2, points: { show: false }, value }];
      names.forEach((n, j) => series.push({ label: n, stroke: palette[j % palette.length], width: 1.5, points: { show: false }, value }));
      const opts = {
        width: width(), height: 200, series,
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [{ stroke: '#64748b', grid: { stroke: '#eef2f7' } },
          { stroke: '#64748b', grid: { stroke: '#eef2f7' }, size: 70, values: (u, vals) => vals.map(v => rate(v, c.unit)) }],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
      };
      return new uPlot(opts, columns(c.key), boxes[i]);
    });
  };
  const columns = key => [data.times.map(t => t / 1000), data.total[key], ...names.map(n => data.topics[n][key])];
  const update = () => {
    const every = data.intervalMs > 0 ? `Sampled every ${span(data.intervalMs)}` : 'Sampled on demand';
    note.textContent = data.times.length < 1
      ? `${every}: the first rates appear after two samples.`
      : `${every} · ${data.times.length} sample${data.times.length === 1 ? '' : 's'} · last poll ${time(data.lastPoll)}`;
    clear(warn);
    if (data.lastError) warn.append(alertBox('warn', 'The last poll failed: ' + data.lastError));
    if (data.topicsTruncated) warn.append(alertBox('info', 'More topics than the sampler tracks: the charts show the busiest.'));
    const same = Object.keys(data.topics).sort().join('\n') === names.join('\n');
    if (!same || plots.length === 0) build();
    else plots.forEach((p, i) => p.setData(columns(charts[i].key)));
    const rows = Object.entries(data.current).map(([topic, r]) => ({ topic, ...r })).filter(r => r.in > 0 || r.out > 0 || r.bytesIn > 0);
    clear(current).append(table([
      { label: 'Topic', sort: r => r.topic, render: r => r.topic },
      { label: 'Records in', num: true, sort: r => r.in, render: r => rate(r.in) },
      { label: 'Records consumed', num: true, sort: r => r.out, render: r => rate(r.out) },
      { label: 'Bytes in', num: true, sort: r => r.bytesIn, render: r => rate(r.bytesIn, 'B') },
    ], rows, { sortBy: 1, sortDir: -1, empty: 'No traffic in the latest sample.' }));
  };
  update();

  const ro = new ResizeObserver(() => { for (const p of plots) p.setSize({ width: width(), height: 200 }); });
  ro.observe(boxes[0]);
  const timer = setInterval(async () => {
    try {
      data = await get('/api/throughput?top=8');
      if (ctx.isCurrent()) update();
    } catch (e) {
      clear(warn).append(alertBox('error', e.message));
    }
  }, Math.max(2000, data.intervalMs));
  ctx.onLeave(() => { clearInterval(timer); ro.disconnect(); for (const p of plots) p.destroy(); });
}
