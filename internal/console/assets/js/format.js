// format.js turns numbers, sizes, times and record bytes into text. Record bytes arrive
// base64-encoded and are shown as text, pretty JSON or a hex dump; the result is always a
// string that the caller puts into a text node.

export function num(n) {
  if (n === null || n === undefined || n < 0) return '–';
  return Number(n).toLocaleString('en-US');
}

export function bytes(n) {
  if (n === null || n === undefined || n < 0) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + ' ' + units[i];
}

export function rate(n, unit) {
  if (!isFinite(n)) return '–';
  if (unit === 'B') return bytes(Math.round(n)) + '/s';
  if (n >= 1e6) return (n / 1e6).toFixed(2) + ' M/s';
  if (n >= 1e3) return (n / 1e3).toFixed(1) + ' k/s';
  return n.toFixed(n < 10 ? 1 : 0) + ' /s';
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// time shows a millisecond timestamp in local time, to the millisecond.
export function time(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function ago(ms) {
  if (!ms || ms < 0) return '–';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

export function b64(s) {
  if (s === null || s === undefined) return null;
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const strictUTF8 = new TextDecoder('utf-8', { fatal: true });

export function text(u8) {
  return utf8.decode(u8);
}

// isText says whether bytes are valid UTF-8 without control characters other than
// whitespace: what Auto shows as text rather than hex.
function isText(u8) {
  let s;
  try { s = strictUTF8.decode(u8); } catch { return false; }
  return !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s);
}

export function hex(u8) {
  const lines = [];
  for (let off = 0; off < u8.length; off += 16) {
    const row = u8.subarray(off, off + 16);
    let hx = '';
    let asc = '';
    for (let i = 0; i < 16; i++) {
      if (i < row.length) {
        hx += row[i].toString(16).padStart(2, '0') + ' ';
        asc += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : '.';
      } else {
        hx += '   ';
      }
      if (i === 7) hx += ' ';
    }
    lines.push(off.toString(16).padStart(8, '0') + '  ' + hx + ' |' + asc + '|');
  }
  return lines.join('\n');
}

function prettyJSON(u8) {
  const s = text(u8).trim();
  if (!(s.startsWith('{') || s.startsWith('[') || s.startsWith('"'))) {
    // Numbers, booleans and null are JSON too, but read better as text.
    try { JSON.parse(s); } catch { return null; }
    return s;
  }
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch { return null; }
}

// render shows bytes in a format: auto, text, json or hex. It returns {text, as, note}:
// as is the format used (auto picks json, text or hex), note explains a fallback.
export function render(u8, format) {
  if (u8 === null) return { text: null, as: format };
  switch (format) {
    case 'text': return { text: text(u8), as: 'text' };
    case 'hex': return { text: hex(u8), as: 'hex' };
    case 'json': {
      const j = prettyJSON(u8);
      if (j === null) return { text: text(u8), as: 'text', note: 'not valid JSON: shown as text' };
      return { text: j, as: 'json' };
    }
    default: {
      if (u8.length === 0) return { text: '', as: 'text' };
      const j = prettyJSON(u8);
      if (j !== null && /^[[{]/.test(j)) return { text: j, as: 'json' };
      if (isText(u8)) return { text: text(u8), as: 'text' };
      return { text: hex(u8), as: 'hex' };
    }
  }
}

// preview is a one-line rendering for the table.
export function preview(u8, format, max = 200) {
  if (u8 === null) return null;
  let r = render(u8, format);
  let s = r.as === 'json' ? JSON.stringify(JSON.parse(r.text)) : r.text;
  if (r.as === 'hex') s = Array.from(u8.subarray(0, 64), b => b.toString(16).padStart(2, '0')).join(' ');
  s = s.replace(/\s+/g, ' ');
  return s.length > max ? s.slice(0, max) + '…' : s;
}
