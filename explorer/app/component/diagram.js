// The Diagram view's interactive frame (an st.components.v2 component): a Graphviz SVG with
// wheel zoom at the cursor, drag to pan, Fit / 100% buttons, a tooltip with each node's facts,
// and click to select. The selected node (chosen in Python: click, find box or page address)
// is outlined and, when `focus` changes, centred.
//
// data: JSON bytes of {svg, version, candidates, focus, height}; trigger "select": a clicked node's id.
// View state lives on the host element, so a rerun with the same SVG keeps the pan and zoom.

const PT = 4 / 3;           // CSS px per SVG point: Graphviz draws in points; 100% is natural size
const MIN_SCALE = 0.005;
const MAX_SCALE = 6;
const DRAG_PX = 4;          // a press that moves less than this is a click
const XLINK = "http://www.w3.org/1999/xlink";

function makeView(host) {
  const root = document.createElement("div");
  root.className = "dv";
  root.innerHTML = `
    <div class="dv-bar">
      <button type="button" class="dv-fit" title="Show the whole diagram">Fit</button>
      <button type="button" class="dv-100" title="Natural size">100%</button>
      <button type="button" class="dv-in" title="Zoom in">+</button>
      <button type="button" class="dv-out" title="Zoom out">&minus;</button>
      <span class="dv-zoom"></span>
      <span class="dv-hint">wheel: zoom · drag: pan · click a node: inspect it</span>
    </div>
    <div class="dv-stage"></div>
    <div class="dv-tip" hidden></div>`;
  host.appendChild(root);
  const v = {
    root, stage: root.querySelector(".dv-stage"), tip: root.querySelector(".dv-tip"),
    zoomLabel: root.querySelector(".dv-zoom"), svg: null, version: null, focus: null,
    width: 1, height: 1, scale: PT, x: 0, y: 0, frame: 0, ids: new Map(), selected: null,
    setTrigger: () => {},
  };
  root.querySelector(".dv-fit").onclick = () => fit(v);
  root.querySelector(".dv-100").onclick = () => zoomAt(v, PT / v.scale);
  root.querySelector(".dv-in").onclick = () => zoomAt(v, 1.25);
  root.querySelector(".dv-out").onclick = () => zoomAt(v, 0.8);
  listen(v);
  return v;
}

function size(v) {
  return [Math.max(1, v.stage.clientWidth), Math.max(1, v.stage.clientHeight)];
}

// The view's scale and corner as the SVG's viewBox, now ...
function apply(v) {
  if (v.frame) cancelAnimationFrame(v.frame);
  v.frame = 0;
  if (!v.svg) return;
  const [cw, ch] = size(v);
  v.svg.setAttribute("viewBox", `${v.x} ${v.y} ${cw / v.scale} ${ch / v.scale}`);
  v.zoomLabel.textContent = `${Math.round((v.scale / PT) * 100)}%`;
}

// ... or at the next frame: a burst of wheel or drag events costs one layout.
function render(v) {
  if (!v.frame) v.frame = requestAnimationFrame(() => apply(v));
}

function zoomAt(v, factor, px, py) {
  const [cw, ch] = size(v);
  px = px ?? cw / 2;
  py = py ?? ch / 2;
  const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, v.scale * factor));
  // keep the drawing's point under (px, py) where it is
  v.x += px / v.scale - px / scale;
  v.y += py / v.scale - py / scale;
  v.scale = scale;
  render(v);
}

function fit(v) {
  const [cw, ch] = size(v);
  v.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, 0.98 * Math.min(cw / v.width, ch / v.height)));
  v.x = (v.width - cw / v.scale) / 2;
  v.y = (v.height - ch / v.scale) / 2;
  render(v);
}

// First view of a new drawing: all of it when legible, else natural size (or the long side
// fitted) from its start, as a scrolling frame would show it.
function home(v) {
  const [cw, ch] = size(v);
  const whole = Math.min(cw / v.width, ch / v.height);
  if (whole >= 0.5 * PT) return fit(v);
  const tall = v.height / v.width > ch / cw;
  v.scale = Math.min(PT, tall ? cw / v.width : ch / v.height);
  v.x = tall ? (v.width - cw / v.scale) / 2 : 0;
  v.y = tall ? 0 : (v.height - ch / v.scale) / 2;
  render(v);
}

// The SVG's user-space box of an element, from its on-screen box.
function boxOf(v, el) {
  apply(v);
  const r = el.getBoundingClientRect();
  const s = v.stage.getBoundingClientRect();
  return {x: v.x + (r.left - s.left) / v.scale, y: v.y + (r.top - s.top) / v.scale,
          w: r.width / v.scale, h: r.height / v.scale};
}

function centreOn(v, el) {
  const [cw, ch] = size(v);
  const b = boxOf(v, el);
  v.scale = Math.max(MIN_SCALE, Math.min(PT, 0.8 * cw / Math.max(b.w, 1), 0.8 * ch / Math.max(b.h, 1)));
  v.x = b.x + b.w / 2 - cw / (2 * v.scale);
  v.y = b.y + b.h / 2 - ch / (2 * v.scale);
  render(v);
}

function load(v, data) {
  v.stage.innerHTML = data.svg;
  const svg = v.stage.querySelector("svg");
  v.svg = svg;
  v.version = data.version;
  v.selected = null;
  v.ids = new Map();
  if (!svg) return;
  const box = (svg.getAttribute("viewBox") || "").trim().split(/[\s,]+/).map(Number);
  v.width = box[2] || svg.width.baseVal.value || 1;
  v.height = box[3] || svg.height.baseVal.value || 1;
  svg.setAttribute("width", "100%");
  svg.setAttribute("height", "100%");
  svg.setAttribute("preserveAspectRatio", "xMinYMin meet");
  // Nodes by id (their <title>), clusters as "cluster_<path>"; tooltips move from xlink:title
  // (the browser's own, slow to show) to this view's tooltip.
  for (const g of svg.querySelectorAll("g.node, g.cluster")) {
    const t = g.querySelector(":scope > title");
    if (t) v.ids.set(t.textContent, g);
  }
  for (const a of svg.querySelectorAll("a")) {
    const tip = a.getAttributeNS(XLINK, "title");
    if (tip !== null) {
      a.removeAttributeNS(XLINK, "title");
      a.setAttribute("data-tip", tip);
    }
  }
  home(v);
}

function select(v, candidates, centre) {
  let el = null;
  for (const id of candidates) {
    el = v.ids.get(id) || v.ids.get("cluster_" + id);
    if (el) break;
  }
  if (v.selected !== el) {
    v.selected?.classList.remove("dv-selected");
    el?.classList.add("dv-selected");
    v.selected = el;
  }
  v.root.dataset.selected = el ? el.querySelector(":scope > title").textContent.replace(/^cluster_/, "") : "";
  if (el && centre) centreOn(v, el);
}

function selectable(target) {
  const g = target.closest?.("g.node, g.cluster");
  if (!g || g.classList.contains("legend")) return null;
  const t = g.querySelector(":scope > title");
  return t ? t.textContent.replace(/^cluster_/, "") : null;
}

function listen(v) {
  const stage = v.stage;
  stage.addEventListener("wheel", (e) => {
    if (!v.svg) return;
    e.preventDefault();
    const r = stage.getBoundingClientRect();
    const step = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;  // lines -> px
    zoomAt(v, Math.exp(-Math.max(-300, Math.min(300, step)) * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, {passive: false});

  let press = null;
  stage.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    press = {x: e.clientX, y: e.clientY, vx: v.x, vy: v.y, moved: false, id: e.pointerId};
  });
  stage.addEventListener("pointermove", (e) => {
    if (press && press.id === e.pointerId) {
      const dx = e.clientX - press.x, dy = e.clientY - press.y;
      if (!press.moved && Math.hypot(dx, dy) >= DRAG_PX) {
        press.moved = true;
        stage.setPointerCapture(e.pointerId);
        stage.classList.add("dv-dragging");
        v.tip.hidden = true;
      }
      if (press.moved) {
        v.x = press.vx - dx / v.scale;
        v.y = press.vy - dy / v.scale;
        render(v);
      }
      return;
    }
    showTip(v, e);
  });
  const release = (e) => {
    if (!press || press.id !== e.pointerId) return;
    const clicked = !press.moved && e.type === "pointerup";
    press = null;
    stage.classList.remove("dv-dragging");
    if (clicked) {
      const id = selectable(e.target);
      if (id) v.setTrigger("select", id);
    }
  };
  stage.addEventListener("pointerup", release);
  stage.addEventListener("pointercancel", release);
  stage.addEventListener("pointerleave", () => { v.tip.hidden = true; });
}

function showTip(v, e) {
  const a = e.target.closest?.("[data-tip]");
  if (!a) {
    v.tip.hidden = true;
    return;
  }
  v.tip.textContent = a.getAttribute("data-tip");
  v.tip.hidden = false;
  const r = v.root.getBoundingClientRect();
  const w = v.tip.offsetWidth, h = v.tip.offsetHeight;
  let left = e.clientX - r.left + 14, top = e.clientY - r.top + 14;
  if (left + w > r.width) left = Math.max(0, e.clientX - r.left - w - 14);
  if (top + h > r.height) top = Math.max(0, e.clientY - r.top - h - 14);
  v.tip.style.left = `${left}px`;
  v.tip.style.top = `${top}px`;
}

export default function ({data: raw, parentElement, setTriggerValue}) {
  const data = ArrayBuffer.isView(raw) || raw instanceof ArrayBuffer ? JSON.parse(new TextDecoder().decode(raw)) : raw;
  const host = parentElement;
  let v = host.__diagramView;
  if (!v || !v.root.isConnected) v = host.__diagramView = makeView(host);
  v.setTrigger = setTriggerValue;
  v.root.style.height = `${data.height}px`;
  const fresh = v.version !== data.version;
  if (fresh) load(v, data);
  v.root.dataset.version = data.version;
  select(v, data.candidates || [], fresh || data.focus !== v.focus);
  v.focus = data.focus;
  const resized = new ResizeObserver(() => render(v));
  resized.observe(v.stage);
  return () => resized.disconnect();
}
