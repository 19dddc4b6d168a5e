// Draws the dashboard charts from the inline JSON (#dash-data) with the vendored ECharts.
(function () {
  var node = document.getElementById("dash-data");
  if (!node || !window.echarts) { return; }
  var data = JSON.parse(node.textContent);
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var series = data[el.dataset.chart] || { names: [], values: [] };
    var empty = !series.values.some(function (v) { return v > 0; });
    var chart = echarts.init(el);
    var option;
    if (el.dataset.kind === "pie") {
      option = { tooltip: { trigger: "item" }, series: [{ type: "pie", radius: ["35%", "65%"],
        data: empty ? [] : series.names.map(function (n, i) { return { name: n, value: series.values[i] }; }) }] };
    } else {
      option = { tooltip: { trigger: "axis" }, grid: { left: 48, right: 12, top: 12, bottom: 48 },
        xAxis: { type: "category", data: series.names, axisLabel: { interval: 0, rotate: 30 } },
        yAxis: { type: "value" }, series: [{ type: "bar", data: series.values }] };
    }
    if (empty && el.dataset.empty) {  // still a chart, saying there is nothing to draw
      option.title = { text: el.dataset.empty, left: "center", top: "middle", textStyle: { color: "#6b7280", fontSize: 14 } };
    }
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
