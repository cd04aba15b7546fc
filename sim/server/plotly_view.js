// A plotly figure on the student page: the browser side of PlotlyView (app.py).
//
// plotly.js comes from the page's own server, once per page (and from the browser's
// cache for the next tab), never from a CDN and never with each figure. The figure is
// drawn from the widget's state whenever that changes and whenever a view is made, so a
// view made late (a tab shown again) draws the current week. It is drawn at the width
// of its element, and only once that has a width: a view is made before the page puts
// it in place, and a figure drawn then would be drawn again at once.
const plotly = import(`${location.origin}${window.solara.rootPath}/static/assets/plotly.min.js`)
  .then(() => window.Plotly);

async function render({ model, el }) {
  const Plotly = await plotly;
  let width = 0;          // the width drawn at; 0 while not in place, or in a hidden tab
  let frame = null;
  const draw = () => {
    frame = null;
    if (!width) return;
    const figure = model.get("figure");
    const week = model.get("week");
    // plotly writes into the layout it is given (autoranges): give it a copy
    const layout = { ...structuredClone(figure.layout), ...week.layout, width };
    const data = figure.data.map((trace, i) => ({ ...trace, ...(week.data || [])[i] }));
    const first = !el.on;
    Plotly.react(el, data, layout, { displaylogo: false });
    if (first) {
      el.on("plotly_click", (event) => {
        const point = event.points[0];
        model.send({ x: point.x, y: point.y });
      });
    }
  };
  // the figure and its week often change together: draw once
  const redraw = () => { frame = frame || requestAnimationFrame(draw); };
  const sizes = new ResizeObserver(() => {
    if (el.clientWidth > 0 && el.clientWidth !== width) {
      width = el.clientWidth;
      draw();
    }
  });
  sizes.observe(el);
  model.on("change:figure", redraw);
  model.on("change:week", redraw);
  return () => {
    sizes.disconnect();
    model.off("change:figure", redraw);
    model.off("change:week", redraw);
    Plotly.purge(el);
  };
}

export default { render };
