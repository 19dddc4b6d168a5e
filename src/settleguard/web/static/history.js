// Draws the history, trends charts from the inline JSON (#hist-data) with the vendored ECharts (the dashboard's
// pattern: console.js). The JSON: {"x": [days], "<chart>": {"units": [left axis unit, right axis unit],
// "stack": bool, "whole": [axes counting whole things: no 0.5 ticks], "series": [{"name", "type": "bar"|"line", "axis": 0|1, "values": [...]}]}}; an element
// <div data-hchart="<chart>" data-empty="..."> shows one chart. Units are shown on each value axis and in the tooltip.
(function () {
  var node = document.getElementById("hist-data");
  if (!node || !window.echarts) { return; }
  var data = JSON.parse(node.textContent);
  document.querySelectorAll("[data-hchart]").forEach(function (el) {
    var spec = data[el.dataset.hchart] || { units: [""], series: [] };
    var units = spec.units || [""];
    var empty = !spec.series.some(function (s) { return s.values.some(function (v) { return v; }); });
    var axes = units.map(function (u, i) {
      var unit = u === "%" ? "%" : " " + u;
      return { type: "value", name: u, position: i ? "right" : "left", splitNumber: 4,
        axisLabel: { formatter: "{value}" + (u === "%" ? "%" : ""), hideOverlap: true },
        minInterval: (spec.whole || []).indexOf(i) >= 0 ? 1 : undefined,
        splitLine: { show: i === 0 }, _unit: unit };
    });
    var option = {
      tooltip: { trigger: "axis", valueFormatter: null },
      legend: { type: "scroll", top: 0 },
      grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.x, axisLabel: { hideOverlap: true } },
      yAxis: axes.map(function (a) { var c = Object.assign({}, a); delete c._unit; return c; }),
      series: spec.series.map(function (s) {
        var unit = (axes[s.axis || 0] || axes[0])._unit;
        return { name: s.name, type: s.type, yAxisIndex: s.axis || 0, data: s.values, connectNulls: false,
          stack: spec.stack && s.type === "bar" ? "total" : undefined, barMaxWidth: 24,
          tooltip: { valueFormatter: function (v) { return v === null || v === undefined ? "-" : v + unit; } } };
      })
    };
    if (empty && el.dataset.empty) {
      option.title = { text: el.dataset.empty, left: "center", top: "middle", textStyle: { color: "#6b7280", fontSize: 14 } };
    }
    var chart = echarts.init(el);
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
