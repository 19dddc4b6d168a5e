// Draws the dashboard charts from the inline JSON (#dash-data) with the vendored ECharts.
// A chart element says how: data-kind (pie | bar), data-horizontal (bars along the x axis, one row per name:
// long names such as bank names stay readable), data-unit (shown on the value axis and in the tooltip, e.g. %).
(function () {
  var node = document.getElementById("dash-data");
  if (!node || !window.echarts) { return; }
  var data = JSON.parse(node.textContent);
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var series = data[el.dataset.chart] || { names: [], values: [] };
    var empty = !series.values.some(function (v) { return v > 0; });
    var unit = el.dataset.unit || "";
    var horizontal = el.dataset.horizontal === "1";
    if (horizontal && series.names.length > 6) {  // one readable row per name
      el.style.height = (48 + 26 * series.names.length) + "px";
    }
    var chart = echarts.init(el);
    var option;
    if (el.dataset.kind === "pie") {
      option = { tooltip: { trigger: "item" }, series: [{ type: "pie", radius: ["35%", "65%"],
        data: empty ? [] : series.names.map(function (n, i) { return { name: n, value: series.values[i] }; })
          .filter(function (d) { return d.value > 0; }) }] };  // no labels for empty slices
    } else {
      var names = { type: "category", data: series.names, axisTick: { alignWithLabel: true },
        axisLabel: { interval: 0, hideOverlap: false } };
      var values = { type: "value", splitNumber: 4, axisLabel: { formatter: "{value}" + unit, hideOverlap: true } };
      if (unit === "%" && Math.max.apply(null, series.values) > 50) { values.max = 100; values.interval = 25; }  // ends at 100%
      if (horizontal) {
        names.inverse = true;  // the first name (the table's first row) on top
      } else {
        names.axisLabel.width = 72;  // wrap a long name under its bar, never clip it
        names.axisLabel.overflow = "break";
      }
      option = { tooltip: { trigger: "axis", valueFormatter: function (v) { return v + unit; } },
        grid: { left: 8, right: 16, top: 12, bottom: 8, containLabel: true },  // labels inside the chart
        xAxis: horizontal ? values : names, yAxis: horizontal ? names : values,
        series: [{ type: "bar", data: series.values, barMaxWidth: 28 }] };
    }
    if (empty && el.dataset.empty) {  // still a chart, saying there is nothing to draw
      option.title = { text: el.dataset.empty, left: "center", top: "middle", textStyle: { color: "#6b7280", fontSize: 14 } };
    }
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
