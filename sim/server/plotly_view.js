// A plotly figure on the student page: the browser side of PlotlyView (app.py).
//
// plotly.js comes from the page's own server, once per page (and from the browser's
// cache for the next tab), never from a CDN and never with each figure. The figure is
// drawn from the widget's state whenever that changes and whenever a view is made, so a
// view made late (a tab shown again) draws the current week. It takes the width of the
// element that holds it, following it as it changes.
const plotly = import(`${location.origin}${window.solara.rootPath}/static/assets/plotly.min.js`)
  .then(() => window.Plotly);

async function render({ model, el }) {
  const Plotly = await plotly;
  const draw = () => {
    const figure = model.get("figure");
    const week = model.get("week");
    // plotly writes into the layout it is given (autoranges): give it a copy
    const layout = { ...structuredClone(figure.layout), ...week.layout };
    const data = figure.data.map((trace, i) => ({ ...trace, ...(week.data || [])[i] }));
    Plotly.react(el, data, layout, { displaylogo: false });
  };
  let frame = null;       // the figure and its week often change together: draw once
  const redraw = () => {
    frame = frame || requestAnimationFrame(() => { frame = null; draw(); });
  };
  draw();
  model.on("change:figure", redraw);
  model.on("change:week", redraw);
  el.on("plotly_click", (event) => {
    const point = event.points[0];
    model.send({ x: point.x, y: point.y });
  });
  const sizes = new ResizeObserver(() => {
    if (el.clientWidth > 0) Plotly.Plots.resize(el);     // 0 while its tab is hidden
  });
  sizes.observe(el);
  return () => {
    sizes.disconnect();
    model.off("change:figure", redraw);
    model.off("change:week", redraw);
    Plotly.purge(el);
  };
}

export default { render };
