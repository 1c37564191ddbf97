// Time-series plots with uPlot: <TimeChart title times series marks height format/>.
//   times   seconds since the epoch (the API's aligned `t` points)
//   series  [{label, values (same length as times; null = gap), color?}]
//   marks   [{t, label}]: vertical lines (scaling decisions), their label on hover
//   format  (value) => string for the y axis and the legend
// The chart follows its container's width. The uPlot instance lives as long as the series
// (labels, colours) and the height stay the same: new data (a poll) go through setData,
// so a drag-zoom and the hover legend survive a refresh; double-click zooms back out.
import uPlot from "../vendor/uplot.js";
import { html, useEffect, useRef } from "../vendor/preact-htm.js";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

const NO_MARKS = [];
const DEFAULT_FORMAT = (v) => (v === null || v === undefined ? "—" : String(Math.round(v * 100) / 100));
const NEAR_PX = 6; // how close (CSS pixels) the cursor must be to a mark to show its label

// Dashed lines at the marks, and the nearest mark's label in a tip while the cursor is
// on it. `state.marks` is read at each draw, so new marks only need a redraw.
function marksPlugin(state) {
  let tip = null;
  return {
    hooks: {
      init: [
        (u) => {
          tip = document.createElement("div");
          tip.className = "chart-mark-tip";
          tip.setAttribute("role", "tooltip");
          tip.hidden = true;
          u.over.appendChild(tip);
        },
      ],
      draw: [
        (u) => {
          const ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "rgba(217,119,6,0.8)";
          ctx.setLineDash([4, 4]);
          ctx.lineWidth = 1;
          for (const m of state.marks) {
            const x = Math.round(u.valToPos(m.t, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        },
      ],
      setCursor: [
        (u) => {
          if (!tip) return;
          const left = u.cursor.left;
          let best = null;
          if (left !== undefined && left >= 0) {
            for (const m of state.marks) {
              const d = Math.abs(u.valToPos(m.t, "x") - left);
              if (d <= NEAR_PX && (!best || d < best.d)) best = { d, m };
            }
          }
          if (!best) {
            tip.hidden = true;
            return;
          }
          tip.textContent = best.m.label || "";
          tip.style.left = `${Math.round(u.valToPos(best.m.t, "x"))}px`;
          tip.hidden = !best.m.label;
        },
      ],
    },
  };
}

// The y range: uPlot's own, except for a plot with nothing but zeros or no value at all,
// which spans 0 to 1 (uPlot's default for it, 0 to 100, read "10,000%" on a plot of
// fractions such as the error rate).
function yRange(u, min, max) {
  if (min === null || max === null || min === undefined || max === undefined || (min === 0 && max === 0)) return [0, 1];
  return uPlot.rangeNum(min, max, 0.1, true);
}

// Whether the x scale shows less than all of `times` (the user zoomed in).
function zoomedIn(u, times) {
  if (!times.length) return false;
  const { min, max } = u.scales.x;
  if (min === null || max === null || min === undefined || max === undefined) return false;
  const slack = 1e-6 * Math.max(1, Math.abs(times[times.length - 1]));
  return min > times[0] + slack || max < times[times.length - 1] - slack;
}

export function TimeChart({ title, times, series, marks = NO_MARKS, height = 180, format = DEFAULT_FORMAT, testid }) {
  const box = useRef(null);
  const plot = useRef(null);
  // What the hooks read at draw time: the latest format, marks and times, so none of them
  // needs a new plot.
  const state = useRef({ format, marks, times }).current;
  state.format = format;
  // The plot is made again only when the series themselves change (their labels, count
  // or colours) or the height; data, marks and format do not re-create it.
  const shape = JSON.stringify([height, series.map((s) => [s.label, s.color || null])]);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const opts = {
      width: Math.max(200, el.clientWidth),
      height,
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: yRange } },
      axes: [{}, { values: (u, vals) => vals.map((v) => state.format(v)), size: 60 }],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color || PALETTE[i % PALETTE.length],
          width: 1.5,
          spanGaps: false,
          value: (u, v) => state.format(v),
        })),
      ],
      plugins: [marksPlugin(state)],
      // The y scale's top, for tests (the axis itself is drawn on a canvas).
      hooks: { setScale: [(u, key) => key === "y" && (el.dataset.yMax = String(u.scales.y.max))] },
    };
    state.times = times;
    state.series = series;
    state.marks = marks || NO_MARKS;
    const u = new uPlot(opts, [times, ...series.map((s) => s.values)], el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      if (plot.current === u) plot.current = null;
    };
  }, [shape]); // eslint-disable-line
  // New data: keep the plot (and the user's zoom, if any).
  useEffect(() => {
    const u = plot.current;
    if (!u || (state.times === times && state.series === series)) return;
    const keep = zoomedIn(u, state.times);
    const { min, max } = u.scales.x;
    state.times = times;
    state.series = series;
    u.setData([times, ...series.map((s) => s.values)], !keep);
    if (keep) u.setScale("x", { min, max });
  }, [times, series]);
  // New marks: redraw the lines (no new data, no new plot).
  const marksKey = JSON.stringify((marks || NO_MARKS).map((m) => [m.t, m.label]));
  useEffect(() => {
    state.marks = marks || NO_MARKS;
    if (plot.current) plot.current.redraw(false);
  }, [marksKey]); // eslint-disable-line
  const values = series.reduce((n, s) => n + s.values.filter((v) => v !== null && v !== undefined).length, 0);
  return html`<figure class="chart" data-testid=${testid} data-points=${times.length} data-values=${values}>
    ${title ? html`<figcaption>${title}</figcaption>` : null}
    <div ref=${box}></div>
  </figure>`;
}
