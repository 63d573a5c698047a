// The Diagram view's interactive frame (an st.components.v2 component): a Graphviz SVG with
// wheel zoom at the cursor, drag to pan, Fit / 100% buttons, a tooltip with each node's facts,
// and click to select. The selected node (chosen in Python: click, find box or page address)
// is outlined and, when `focus` changes, centred in the part of the frame the window shows.
// The frame is as tall as the window allows (at most `height` px), shorter where the drawing
// at its first scale is shorter; a colour legend stays pinned to its corner while zooming.
//
// data: JSON bytes of {svg, version, candidates, focus, height}; trigger "select": a clicked node's id.
// View state lives on the host element, so a rerun with the same SVG keeps the pan and zoom.

const PT = 4 / 3;           // CSS px per SVG point: Graphviz draws in points; 100% is natural size
const MIN_SCALE = 0.005;
const MAX_SCALE = 6;
const LEGIBLE = 0.5 * PT;  // a first view shows the whole drawing if it reads at 50% or more
const DRAG_PX = 4;          // a press that moves less than this is a click
const XLINK = "http://www.w3.org/1999/xlink";
const SVGNS = "http://www.w3.org/2000/svg";
const MIN_STAGE = 120;      // px: the shortest frame
const WINDOW_MARGIN = 16;   // px of the window left free beside a frame that fills it

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
    <div class="dv-legends"></div>
    <div class="dv-tip" hidden></div>`;
  host.appendChild(root);
  root.querySelector(".dv-stage").style.height = `${MIN_STAGE}px`;
  const v = {
    root, stage: root.querySelector(".dv-stage"), tip: root.querySelector(".dv-tip"),
    zoomLabel: root.querySelector(".dv-zoom"), bar: root.querySelector(".dv-bar"),
    legends: root.querySelector(".dv-legends"), svg: null, version: null, focus: null,
    width: 1, height: 1, scale: PT, x: 0, y: 0, frame: 0, ids: new Map(), selected: null,
    most: 720, auto: true, pinned: false, pending: null, setTrigger: () => {},
  };
  root.querySelector(".dv-fit").onclick = () => { v.auto = false; fit(v); };
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
  v.auto = false;
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

// The tallest the stage may be: the window's height less the toolbar (at most `most` px).
function stageLimit(v) {
  return Math.max(MIN_STAGE, Math.min(v.most, window.innerHeight - v.bar.offsetHeight - WINDOW_MARGIN));
}

// First view of a new drawing: all of it when legible, else natural size (or the long side
// fitted) from its start, as a scrolling frame would show it. The stage is then made as tall as
// the drawing at that scale, up to the window's height: a wide (left-right) drawing fitted to the
// width sits in a frame of its own height, not in the middle of an empty one. Until the stage
// has a width (a tab still hidden), nothing is decided: the resize observer calls again.
function home(v) {
  const cw = v.stage.clientWidth;
  if (!v.svg || cw < 2) return;
  const limit = stageLimit(v);
  const whole = Math.min(cw / v.width, limit / v.height);
  const tall = v.height / v.width > limit / cw;
  let scale, ch;
  if (whole >= LEGIBLE) {  // legible whole
    scale = Math.min(MAX_SCALE, 0.98 * whole);
    ch = Math.min(limit, Math.ceil((v.height * scale) / 0.98));
  } else {
    // a tall drawing fitted to its width, a wide one to the window's height (natural size at most)
    scale = Math.min(PT, tall ? cw / v.width : limit / v.height);
    ch = tall ? limit : Math.min(limit, Math.ceil(v.height * scale) + 2);
  }
  ch = Math.max(MIN_STAGE, ch);
  v.stage.style.height = `${ch}px`;
  v.scale = scale;
  const fits = whole >= LEGIBLE;
  v.x = fits || tall ? (v.width - cw / scale) / 2 : 0;
  v.y = !fits && tall ? 0 : (v.height - ch / scale) / 2;
  v.auto = true;
  pinLegends(v);
  apply(v);
}

// A colour legend drawn in the graph moves out of sight when zooming: a copy of it at natural size
// is pinned to the frame's lower left corner instead (the exported files keep it in the graph).
function pinLegends(v) {
  if (v.pinned || !v.svg) return;
  v.legends.innerHTML = "";
  for (const g of v.svg.querySelectorAll("g.node.legend")) {
    const b = g.getBBox();
    if (!b.width) return;  // not laid out yet
    const pin = document.createElementNS(SVGNS, "svg");
    pin.setAttribute("viewBox", `${b.x - 2} ${b.y - 2} ${b.width + 4} ${b.height + 4}`);
    pin.setAttribute("width", `${(b.width + 4) * PT}`);
    pin.setAttribute("height", `${(b.height + 4) * PT}`);
    const copy = g.cloneNode(true);
    copy.removeAttribute("id");
    pin.appendChild(copy);
    v.legends.appendChild(pin);
    g.setAttribute("visibility", "hidden");
  }
  v.pinned = true;
}

// The SVG's user-space box of an element, from its on-screen box.
function boxOf(v, el) {
  apply(v);
  const r = el.getBoundingClientRect();
  const s = v.stage.getBoundingClientRect();
  return {x: v.x + (r.left - s.left) / v.scale, y: v.y + (r.top - s.top) / v.scale,
          w: r.width / v.scale, h: r.height / v.scale};
}

// Scroll the page so that the whole frame is in the window, where part of its stage is not.
function reveal(v) {
  const s = v.stage.getBoundingClientRect();
  const shown = Math.min(s.bottom, window.innerHeight) - Math.max(s.top, 0);
  if (shown >= Math.min(s.height, window.innerHeight) - 1) return;
  v.tip.hidden = true;  // it would stay where the pointer was
  v.root.scrollIntoView({block: "nearest", behavior: "instant"});
}

// Centre `el` in the part of the stage the window shows (the frame is first brought into view).
function centreOn(v, el) {
  if (v.stage.clientWidth < 2) {  // not laid out yet: once it is
    v.pending = el;
    return;
  }
  reveal(v);
  const [cw, ch] = size(v);
  const b = boxOf(v, el);
  v.scale = Math.max(MIN_SCALE, Math.min(PT, 0.8 * cw / Math.max(b.w, 1), 0.8 * ch / Math.max(b.h, 1)));
  const s = v.stage.getBoundingClientRect();
  const top = Math.max(s.top, 0), bottom = Math.min(s.bottom, window.innerHeight);
  const middle = bottom > top ? (top + bottom) / 2 - s.top : ch / 2;
  v.x = b.x + b.w / 2 - cw / (2 * v.scale);
  v.y = b.y + b.h / 2 - middle / v.scale;
  v.auto = false;
  render(v);
}

function load(v, data) {
  v.stage.innerHTML = data.svg;
  const svg = v.stage.querySelector("svg");
  v.svg = svg;
  v.version = data.version;
  v.selected = null;
  v.ids = new Map();
  v.pinned = false;
  v.pending = null;
  v.auto = true;
  v.legends.innerHTML = "";
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
  const changed = v.selected !== el;
  if (changed) {
    v.selected?.classList.remove("dv-selected");
    el?.classList.add("dv-selected");
    v.selected = el;
  }
  v.root.dataset.selected = el ? el.querySelector(":scope > title").textContent.replace(/^cluster_/, "") : "";
  if (el && centre) centreOn(v, el);
  else if (el && changed) keepInView(v, el);
}

// Scroll the page and pan as little as needed for `el` (a clicked node) to be wholly where the
// window shows the frame; a node larger than that is left as it is.
function keepInView(v, el) {
  if (v.stage.clientWidth < 2) return;
  let r = el.getBoundingClientRect();
  if (r.top < 0 || r.bottom > window.innerHeight) {
    reveal(v);
    r = el.getBoundingClientRect();
  }
  const s = v.stage.getBoundingClientRect(), pad = 8;
  const top = Math.max(s.top, 0) + pad, bottom = Math.min(s.bottom, window.innerHeight) - pad;
  const left = s.left + pad, right = s.right - pad;
  const dy = r.height > bottom - top ? 0 : r.top < top ? r.top - top : Math.max(0, r.bottom - bottom);
  const dx = r.width > right - left ? 0 : r.left < left ? r.left - left : Math.max(0, r.right - right);
  if (!dx && !dy) return;
  v.x += dx / v.scale;
  v.y += dy / v.scale;
  v.auto = false;
  render(v);
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
        v.auto = false;
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
      if (id) {
        v.auto = false;  // the view the node was clicked in stays, resized or not
        v.setTrigger("select", id);
      }
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

function relayout(v) {
  if (v.stage.clientWidth < 2) return;
  if (v.auto) home(v);
  if (v.pending) {
    const el = v.pending;
    v.pending = null;
    centreOn(v, el);
  } else if (!v.auto) {
    render(v);
  }
}

export default function ({data: raw, parentElement, setTriggerValue}) {
  const data = ArrayBuffer.isView(raw) || raw instanceof ArrayBuffer ? JSON.parse(new TextDecoder().decode(raw)) : raw;
  const host = parentElement;
  let v = host.__diagramView;
  if (!v || !v.root.isConnected) v = host.__diagramView = makeView(host);
  v.setTrigger = setTriggerValue;
  v.most = data.height;
  const fresh = v.version !== data.version;
  if (fresh) load(v, data);
  v.root.dataset.version = data.version;
  select(v, data.candidates || [], fresh || data.focus !== v.focus);
  v.focus = data.focus;
  // A frame still showing its first view follows the window (and a tab shown after loading).
  const resized = () => relayout(v);
  const observer = new ResizeObserver(resized);
  observer.observe(v.stage);
  window.addEventListener("resize", resized);
  return () => {
    observer.disconnect();
    window.removeEventListener("resize", resized);
  };
}
