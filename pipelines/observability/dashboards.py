"""Grafana dashboards from the panel specs, with grafana-foundation-sdk's typed builders.

Each dashboard ships twice: as a ConfigMap labelled for the kube-prometheus-stack Grafana sidecar
(`observability.dashboard_label`), and as plain JSON to import by hand.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement, VizOrientation
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from pipelines.config import KioskConfig
from pipelines.observability.panels import DashboardSpec, Panel, Variable, all_dashboards

WIDTH, HEIGHT = 12, 8  # two panels a row on Grafana's 24-column grid
_PANELS: dict[str, type[timeseries.Panel] | type[stat.Panel] | type[bargauge.Panel]] = {
    "timeseries": timeseries.Panel,
    "stat": stat.Panel,
    "bargauge": bargauge.Panel,
}


def _datasource(cfg: KioskConfig) -> DataSourceRef:
    return DataSourceRef(type_val="prometheus", uid=cfg.observability.datasource_uid)


def _variable(var: Variable, cfg: KioskConfig) -> Any:
    if var.kind == "constant":
        return dashboard.ConstantVariable(var.name).value(var.value)
    if var.kind == "custom":
        first = var.value.split(",")[0]
        return (
            dashboard.CustomVariable(var.name)
            .label(var.label or var.name)
            .values(var.value)
            .current(VariableOption(selected=True, text=first, value=first))
        )
    return (
        dashboard.QueryVariable(var.name)
        .label(var.label or var.name)
        .query(var.value)
        .datasource(_datasource(cfg))
        .multi(True)
        .include_all(True)
        .all_value(".*")  # every query matches the variable with =~
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_DESC)
        .current(_current(var))
    )


def _current(var: Variable) -> VariableOption:
    if var.default:
        return VariableOption(selected=True, text=var.default, value=var.default)
    return VariableOption(selected=True, text="All", value="$__all")


def _options(builder: Any, kind: str) -> Any:
    """The last value of each series for stats and bars (pushed series are steps, not rates)."""
    if kind == "timeseries":
        legend = common.VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM)
        return builder.legend(legend.show_legend(True).calcs([]))
    reduce = common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    return builder.reduce_options(reduce).orientation(VizOrientation.HORIZONTAL)


def _panel(spec: Panel, cfg: KioskConfig) -> Any:
    builder: Any = _PANELS[spec.kind]()
    builder = builder.title(spec.title).description(spec.description).unit(spec.unit)
    builder = _options(builder, spec.kind)
    builder = builder.datasource(_datasource(cfg)).span(WIDTH).height(HEIGHT)
    for index, query in enumerate(spec.queries):
        target = prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(chr(ord("A") + index))
        builder = builder.with_target(target.datasource(_datasource(cfg)))
    return builder


def build(spec: DashboardSpec, cfg: KioskConfig) -> dict[str, Any]:
    """The dashboard model as Grafana's JSON (a plain dict, keys in a stable order)."""
    board = (
        dashboard.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(list(spec.tags))
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("utc")
        .editable()
    )
    for var in spec.variables:
        board = board.with_variable(_variable(var, cfg))
    for panel in spec.panels:
        board = board.with_panel(_panel(panel, cfg))
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def to_json(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def config_map(spec: DashboardSpec, model: dict[str, Any], cfg: KioskConfig) -> dict[str, Any]:
    obs = cfg.observability
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{spec.uid}-dashboard",
            "namespace": obs.grafana_namespace,
            "labels": {obs.dashboard_label: obs.dashboard_label_value, "app.kubernetes.io/part-of": "kiosk"},
        },
        "data": {f"{spec.uid}.json": to_json(model)},
    }


def build_all(cfg: KioskConfig) -> list[tuple[DashboardSpec, dict[str, Any]]]:
    return [(spec, build(spec, cfg)) for spec in all_dashboards(cfg)]
