package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/testbedos/testbedos/internal/api"
)

// metrics are the server's Prometheus series, on a registry of its own.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	actions  *prometheus.CounterVec
	took     *prometheus.HistogramVec
	streams  prometheus.Gauge
	members  prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "testbedos_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "testbedos_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"route"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "testbedos_actions_total", Help: "Finished actions by command and outcome.",
		}, []string{"command", "outcome"}),
		took: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "testbedos_action_duration_seconds", Help: "Action duration by command.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 9),
		}, []string{"command"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "testbedos_log_streams", Help: "Log followers connected now.",
		}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "testbedos_cluster_members", Help: "Hosts in the cluster, the main included.",
		}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.actions, m.took, m.streams, m.members,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.members.Set(1)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// observeAction records a finished action.
func (m *metrics) observeAction(cmd api.CommandName, code int, took time.Duration) {
	outcome := map[int]string{
		api.ErrorCodeOK: "success", api.ErrorCodeFailed: "failed",
		api.ErrorCodeCancelled: "cancelled", api.ErrorCodeInterrupted: "interrupted",
	}[code]
	if outcome == "" {
		outcome = "code_" + strconv.Itoa(code)
	}
	m.actions.WithLabelValues(string(cmd), outcome).Inc()
	m.took.WithLabelValues(string(cmd)).Observe(took.Seconds())
}
