// The dashboard's charts, drawn with the vendored ECharts from the numbers the page carries in
// <script id="dashboard-data" type="application/json"> (Django's json_script). The tables under
// each chart hold the same numbers and links, so the page works without this file.
//
// The Content Security Policy allows no inline style attributes, so charts use the SVG
// renderer and rich-text tooltips (drawn inside the SVG) instead of ECharts' HTML tooltip.
(function () {
  "use strict";

  var dataNode = document.getElementById("dashboard-data");
  if (!dataNode || typeof window.echarts === "undefined") return;
  var data = JSON.parse(dataNode.textContent);
  var HOUR = 3600;
  var COLORS = ["#0b6bcb", "#12b76a", "#f79009", "#98a2b3", "#7a5af8", "#ee46bc"];

  function hours(seconds) {
    return seconds === null || seconds === undefined ? "-" : seconds / HOUR;
  }

  function percent(share) {
    return share === null || share === undefined ? "-" : share * 100;
  }

  function durationText(h) {
    if (typeof h !== "number") return "—";
    if (h >= 48) return (h / 24).toFixed(1) + " d";
    if (h >= 1) return h.toFixed(1) + " h";
    return Math.round(h * 60) + " min";
  }

  function base(extra) {
    var option = {
      color: COLORS,
      animation: false,
      grid: { left: 60, right: 60, top: 40, bottom: 60, containLabel: true },
      legend: { top: 0 },
      tooltip: { trigger: "axis", renderMode: "richText", confine: true },
    };
    return Object.assign(option, extra);
  }

  function follow(href) {
    if (!href) return;
    if (href.charAt(0) === "#") {
      // Several teams stand behind this item: show its row, whose links go to each register.
      var row = document.getElementById(href.slice(1));
      if (!row) return;
      var details = row.closest("details");
      if (details) details.open = true;
      row.classList.add("highlight");
      row.scrollIntoView({ block: "center" });
      return;
    }
    window.location.assign(href);
  }

  var builders = {
    mttd: function (d) {
      return base({
        xAxis: { type: "category", data: d.labels },
        yAxis: [
          { type: "value", name: "Detection Deficit", axisLabel: { formatter: durationText } },
          { type: "value", name: "escapes (n)", minInterval: 1, splitLine: { show: false } },
        ],
        tooltip: {
          trigger: "axis",
          renderMode: "richText",
          confine: true,
          valueFormatter: function (v) { return typeof v === "number" && v % 1 ? durationText(v) : String(v); },
        },
        series: [
          { name: "n", type: "bar", yAxisIndex: 1, data: d.n, itemStyle: { color: "#d0d5dd" } },
          { name: "mean", type: "line", data: d.mean.map(hours) },
          { name: "median", type: "line", data: d.median.map(hours) },
          { name: "P90", type: "line", data: d.p90.map(hours), lineStyle: { type: "dashed" } },
        ],
      });
    },
    stages: function (d) {
      var boxes = d.boxes.map(function (box, i) {
        var values = box ? box.map(hours) : ["-", "-", "-", "-", "-"];
        if (i === d.weakest) return { value: values, itemStyle: { borderColor: "#b42318", borderWidth: 2 } };
        return values;
      });
      return base({
        xAxis: {
          type: "category",
          data: d.names.map(function (name, i) { return i === d.weakest ? name + " (weakest)" : name; }),
        },
        yAxis: [
          { type: "value", name: "Detection Deficit", axisLabel: { formatter: durationText } },
          { type: "value", name: "containment %", min: 0, max: 100, splitLine: { show: false } },
        ],
        tooltip: { trigger: "item", renderMode: "richText", confine: true },
        // Room under the legend for the axis names (a phone wraps the legend).
        grid: { left: 60, right: 60, top: 56, bottom: 60, containLabel: true },
        series: [
          // Short legend names keep the legend on one line on a phone.
          { name: "quartiles", type: "boxplot", data: boxes },
          // The mean and the P90 beside each box (its middle line is the median).
          { name: "mean", type: "scatter", symbol: "diamond", symbolSize: 10, data: d.mean.map(hours) },
          { name: "P90", type: "scatter", symbol: "triangle", symbolSize: 10, data: d.p90.map(hours) },
          { name: "containment", type: "line", yAxisIndex: 1, data: d.containment.map(percent) },
        ],
      });
    },
    categories: function (d) {
      return base({
        xAxis: { type: "category", data: d.labels },
        yAxis: { type: "value", name: "escapes", minInterval: 1 },
        series: d.series.map(function (s) {
          return { name: s.name, type: "bar", stack: "escapes", data: s.data };
        }),
      });
    },
    pareto_categories: pareto,
    pareto_components: pareto,
    releases: function (d) {
      return base({
        xAxis: { type: "category", data: d.labels, axisLabel: { rotate: 30 } },
        yAxis: [
          { type: "value", name: "escapes", minInterval: 1 },
          { type: "value", name: "escape rate %", min: 0, splitLine: { show: false } },
        ],
        series: [
          { name: "escapes", type: "bar", data: d.escapes },
          { name: "escape rate %", type: "line", yAxisIndex: 1, data: d.rates.map(percent) },
        ],
      });
    },
  };

  function pareto(d) {
    return base({
      xAxis: { type: "category", data: d.labels, axisLabel: { rotate: 20 } },
      yAxis: [
        { type: "value", name: "escapes", minInterval: 1 },
        { type: "value", name: "cumulative %", min: 0, max: 100, splitLine: { show: false } },
      ],
      series: [
        { name: "escapes", type: "bar", data: d.counts },
        { name: "cumulative %", type: "line", yAxisIndex: 1, data: d.cumulative.map(percent) },
      ],
    });
  }

  function hrefOf(name, d, params) {
    if (name === "categories") {
      var series = d.series[params.seriesIndex];
      return series ? series.hrefs[params.dataIndex] : null;
    }
    return d.hrefs ? d.hrefs[params.dataIndex] : null;
  }

  var charts = [];
  document.querySelectorAll("[data-chart]").forEach(function (node) {
    var name = node.getAttribute("data-chart");
    var d = data[name];
    if (!d || !builders[name]) return;
    var chart = window.echarts.init(node, null, { renderer: "svg" });
    chart.setOption(builders[name](d));
    chart.on("click", function (params) { follow(hrefOf(name, d, params)); });
    charts.push(chart);
    // The chart shows the numbers; the table stays one click away ("Numbers").
    var details = node.closest(".chart-card").querySelector("details.numbers");
    if (details) details.open = false;
  });

  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
  // Printed pages carry every table, whatever was folded on screen.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details.numbers").forEach(function (d) { d.open = true; });
    charts.forEach(function (chart) { chart.resize(); });
  });
})();
