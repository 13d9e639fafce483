// A small time-series plot on a canvas: lines, min/max bands, event markers, wheel zoom, drag pan.
// No dependencies. x is in seconds; the owner is told the visible window (onView) so that it can
// ask the API for data binned at that zoom level.

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

export function color(i) { return PALETTE[i % PALETTE.length]; }

export function clock(t) {
  const s = Math.max(0, t), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const ss = sec < 10 ? "0" + sec.toFixed(sec % 1 ? 1 : 0) : sec.toFixed(sec % 1 ? 1 : 0);
  return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${ss}`;
}

function niceStep(span, n) {
  const raw = span / Math.max(n, 1), p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

export class Plot {
  constructor(parent, { title = "", unit = "", height = 220, xFormat = clock, onView = null, onPick = null } = {}) {
    this.el = document.createElement("figure");
    this.el.className = "plot";
    this.el.innerHTML = `<figcaption><span class="title"></span> <span class="unit"></span>
      <button type="button" class="reset" title="show everything (or double-click the plot)">reset zoom</button></figcaption>
      <canvas></canvas><div class="legend"></div>`;
    this.el.querySelector(".title").textContent = title;
    this.el.querySelector(".unit").textContent = unit ? `[${unit}]` : "";
    parent.appendChild(this.el);
    this.canvas = this.el.querySelector("canvas");
    this.height = height;
    this.xFormat = xFormat;
    this.onView = onView;
    this.onPick = onPick;
    this.series = [];
    this.markers = [];
    this.domain = null; // [x0, x1] of everything
    this.view = null; // [x0, x1] shown
    this.follow = true; // live plots: keep the newest data in view until the user zooms
    this._bind();
    new ResizeObserver(() => this.draw()).observe(this.el);
  }

  setTitle(title, unit) {
    this.el.querySelector(".title").textContent = title;
    this.el.querySelector(".unit").textContent = unit ? `[${unit}]` : "";
  }

  setDomain(x0, x1) {
    this.domain = [x0, x1];
    if (!this.view || this.follow) this.view = [x0, x1];
    this.draw();
  }

  setView(x0, x1, notify = true) {
    if (!(x1 > x0)) return;
    if (this.domain) {
      const span = Math.min(x1 - x0, this.domain[1] - this.domain[0]);
      x0 = Math.max(this.domain[0], Math.min(x0, this.domain[1] - span));
      x1 = x0 + span;
    }
    this.view = [x0, x1];
    this.follow = false;
    this.draw();
    if (notify && this.onView) this.onView(x0, x1);
  }

  reset() {
    this.follow = true;
    if (this.domain) this.setView(this.domain[0], this.domain[1]);
    this.follow = true;
  }

  setSeries(series) { this.series = series; this._legend(); this.draw(); }
  setMarkers(markers) { this.markers = markers; this.draw(); }

  _legend() {
    const lg = this.el.querySelector(".legend");
    lg.replaceChildren(...this.series.map((s, i) => {
      const span = document.createElement("span");
      span.innerHTML = `<i style="background:${s.color || color(i)}"></i>`;
      span.append(s.name);
      return span;
    }));
  }

  _bind() {
    const c = this.canvas;
    c.addEventListener("wheel", (e) => {
      if (!this.view) return;
      e.preventDefault();
      const [x0, x1] = this.view, f = e.deltaY > 0 ? 1.25 : 0.8;
      const xm = this._xAt(e.offsetX);
      this.setView(xm - (xm - x0) * f, xm + (x1 - xm) * f);
    }, { passive: false });
    let drag = null;
    c.addEventListener("mousedown", (e) => { if (this.view) drag = { x: e.offsetX, view: this.view.slice(), moved: false }; });
    window.addEventListener("mousemove", (e) => {
      if (!drag) return;
      const dx = e.clientX - c.getBoundingClientRect().left - drag.x;
      if (Math.abs(dx) > 2) drag.moved = true;
      if (!drag.moved) return;
      const per = (drag.view[1] - drag.view[0]) / this._w();
      this.setView(drag.view[0] - dx * per, drag.view[1] - dx * per, false);
    });
    window.addEventListener("mouseup", (e) => {
      if (!drag) return;
      const d = drag;
      drag = null;
      if (d.moved) { if (this.onView) this.onView(...this.view); } else if (this.onPick) this.onPick(this._xAt(d.x));
    });
    c.addEventListener("dblclick", () => this.reset());
    this.el.querySelector(".reset").addEventListener("click", () => this.reset());
  }

  _w() { return Math.max(this.canvas.clientWidth - 70, 10); }
  _xAt(px) { const [x0, x1] = this.view; return x0 + (px - 60) / this._w() * (x1 - x0); }

  draw() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const W = c.clientWidth || 600, H = this.height;
    if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
      c.width = Math.round(W * dpr); c.height = Math.round(H * dpr); c.style.height = H + "px";
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    const L = 60, R = 10, T = 8, B = 22, pw = W - L - R, ph = H - T - B;
    if (!this.view) { g.fillStyle = "#888"; g.fillText("no data yet", L + 10, T + 20); return; }
    const [x0, x1] = this.view;
    let lo = Infinity, hi = -Infinity;
    for (const s of this.series) {
      for (const arr of [s.y, s.lo, s.hi]) {
        if (!arr) continue;
        for (let i = 0; i < s.x.length; i++) {
          const x = s.x[i], v = arr[i];
          if (x < x0 || x > x1 || v === null || !isFinite(v)) continue;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { const d = Math.abs(hi) * 1e-3 || 1e-3; lo -= d; hi += d; }
    const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
    const X = (x) => L + (x - x0) / (x1 - x0) * pw, Y = (v) => T + (hi - v) / (hi - lo) * ph;
    // axes and grid
    g.strokeStyle = "#ddd"; g.fillStyle = "#444"; g.lineWidth = 1; g.font = "11px system-ui, sans-serif";
    const ys = niceStep(hi - lo, 5), yd = Math.max(0, -Math.floor(Math.log10(ys)));
    for (let v = Math.ceil(lo / ys) * ys; v <= hi; v += ys) {
      g.beginPath(); g.moveTo(L, Y(v)); g.lineTo(L + pw, Y(v)); g.stroke();
      g.textAlign = "right"; g.fillText(v.toFixed(yd), L - 4, Y(v) + 4);
    }
    const want = (x1 - x0) / 8;
    const xs = TIME_STEPS.find((s) => s >= want) || niceStep(x1 - x0, 8);
    g.textAlign = "center";
    for (let x = Math.ceil(x0 / xs) * xs; x <= x1; x += xs) {
      g.beginPath(); g.moveTo(X(x), T); g.lineTo(X(x), T + ph); g.stroke();
      g.fillText(this.xFormat(x), X(x), H - 6);
    }
    g.save();
    g.beginPath(); g.rect(L, T, pw, ph); g.clip();
    // markers
    for (const m of this.markers) {
      if (m.x < x0 || m.x > x1) continue;
      g.strokeStyle = m.color || "#b00"; g.setLineDash([4, 3]);
      g.beginPath(); g.moveTo(X(m.x), T); g.lineTo(X(m.x), T + ph); g.stroke();
      g.setLineDash([]);
    }
    // bands, then lines
    this.series.forEach((s, i) => {
      const col = s.color || color(i);
      if (s.lo && s.hi) {
        g.fillStyle = col + "33";
        let open = false;
        const flush = (from, to) => {
          if (to <= from) return;
          g.beginPath();
          for (let k = from; k < to; k++) g.lineTo(X(s.x[k]), Y(s.hi[k]));
          for (let k = to - 1; k >= from; k--) g.lineTo(X(s.x[k]), Y(s.lo[k]));
          g.closePath(); g.fill();
        };
        let start = 0;
        for (let k = 0; k <= s.x.length; k++) {
          const ok = k < s.x.length && s.lo[k] !== null && s.hi[k] !== null;
          if (!ok) { if (open) flush(start, k); open = false; } else if (!open) { open = true; start = k; }
        }
      }
      g.strokeStyle = col; g.lineWidth = 1.4;
      g.beginPath();
      let pen = false;
      for (let k = 0; k < s.x.length; k++) {
        const v = s.y[k];
        if (v === null || !isFinite(v)) { pen = false; continue; }
        if (pen) g.lineTo(X(s.x[k]), Y(v)); else { g.moveTo(X(s.x[k]), Y(v)); pen = true; }
      }
      g.stroke();
    });
    g.restore();
    // marker labels on top
    g.fillStyle = "#b00"; g.textAlign = "left";
    for (const m of this.markers) if (m.label && m.x >= x0 && m.x <= x1) g.fillText(m.label.slice(0, 28), X(m.x) + 3, T + 11);
    g.strokeStyle = "#999"; g.strokeRect(L, T, pw, ph);
  }
}
