// flowguard-backend: a demo upstream for FlowGuard's tests and benchmarks.
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "backend/backend_server.h"

namespace {

struct SignalWatch {
  flowguard::core::UvHandle<uv_signal_t> sigint;
  flowguard::core::UvHandle<uv_signal_t> sigterm;
  flowguard::backend::BackendServer* server = nullptr;
};

void onSignal(uv_signal_t* handle, int) {
  auto* watch = static_cast<SignalWatch*>(handle->data);
  watch->server->shutdown();
  // With the signal handles closed as well, uv_run returns once connections are gone.
  watch->sigint.reset();
  watch->sigterm.reset();
}

}  // namespace

int main(int argc, char** argv) {
  flowguard::backend::BackendOptions options;
  flowguard::backend::FaultSettings& faults = options.faults;
  std::string latency;
  uint64_t seed = 0;
  CLI::App app{"flowguard-backend: demo upstream server for FlowGuard"};
  app.footer(
      "Endpoints: GET /health, GET /_stats, GET|POST /_fault, /echo, /bytes/N[?chunked=1],\n"
      "/status/N, /delay/MS; anything else describes the request as JSON.\n"
      "\n"
      "Fault injection applies to every request except /health, /_stats and /_fault.\n"
      "Per request, a hang is drawn first, then a reset, then a failure; latency applies to\n"
      "every answered request. /health has its own faults (--health-fail-rate,\n"
      "--flap-interval).\n"
      "\n"
      "Run-time control without restart:\n"
      "  GET  /_fault   current settings as JSON\n"
      "  POST /_fault   JSON object with any subset of fail_rate, latency_ms,\n"
      "                 latency_jitter_ms, health_fail_rate, flap_interval_ms, reset_rate,\n"
      "                 hang_rate (absent fields keep their value) and healthy (true/false\n"
      "                 forces /health up/down, null returns to automatic); answers the\n"
      "                 full settings, or 400 with a message for bad JSON or values\n"
      "  GET  /_stats   also counts health_checks, health_failures, injected_failures,\n"
      "                 resets and hangs");
  app.add_option("--port", options.port, "TCP port (0: any free port)")->required();
  app.add_option("--name", options.name, "name reported in every response")->required();
  app.add_option("--host", options.host, "address to bind")->capture_default_str();
  app.add_option("--fail-rate", faults.failRate,
                 "share (0..1) of requests answered 500 or 503 (even odds) with "
                 "{\"error\":\"injected failure\",\"backend\":NAME}")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--latency", latency,
                 "delay every answered request by MS, +- a uniform JITTER (ms) when given as "
                 "MS:JITTER (a negative result counts as 0); up to 600000 each; the loop "
                 "is never blocked")
      ->type_name("MS[:JITTER]")
      ->check([](const std::string& text) {
        uint64_t ms = 0;
        uint64_t jitter = 0;
        return flowguard::backend::parseLatencySpec(text, ms, jitter);
      });
  app.add_option("--health-fail-rate", faults.healthFailRate, "share (0..1) of /health probes answered 503")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--flap-interval", faults.flapIntervalMs,
                 "MS > 0: /health is healthy for MS, unhealthy (always 503) for MS, and so on, "
                 "starting healthy; healthy periods still apply --health-fail-rate")
      ->type_name("MS")
      ->check(CLI::Range(uint64_t{0}, flowguard::backend::kMaxFlapIntervalMs));
  app.add_option("--reset-rate", faults.resetRate,
                 "share (0..1) of requests answered with a head and half the body, then a TCP "
                 "reset")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--hang-rate", faults.hangRate,
                 "share (0..1) of requests read and never answered (the connection stays open "
                 "until the client closes it)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", seed, "seed of the fault random generator (default: random)");
  CLI11_PARSE(app, argc, argv);
  if (!latency.empty()) {
    flowguard::backend::parseLatencySpec(latency, faults.latencyMs, faults.latencyJitterMs);
  }
  if (app.count("--seed") > 0) options.seed = seed;

  // A write to a peer that reset must be an error code, not a fatal signal.
  std::signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  int exitCode = 0;
  {
    flowguard::backend::BackendServer server(&loop, options);
    SignalWatch watch;
    watch.server = &server;
    watch.sigint = flowguard::core::UvHandle<uv_signal_t>(&loop, &watch, uv_signal_init);
    watch.sigterm = flowguard::core::UvHandle<uv_signal_t>(&loop, &watch, uv_signal_init);

    int rc = server.start();
    if (rc != 0) {
      std::fprintf(stderr, "flowguard-backend: cannot listen on %s:%u: %s\n", options.host.c_str(),
                   static_cast<unsigned>(options.port), uv_strerror(rc));
      server.shutdown();
      watch.sigint.reset();
      watch.sigterm.reset();
      exitCode = 1;
    } else {
      uv_signal_start(watch.sigint.get(), onSignal, SIGINT);
      uv_signal_start(watch.sigterm.get(), onSignal, SIGTERM);
      std::string active =
          flowguard::backend::describeFaults(server.faults().settings(), server.faults().seed());
      // The prefix up to the port is what scripts and tests match; faults follow it.
      std::printf("flowguard-backend %s listening on %s:%u%s%s\n", options.name.c_str(), options.host.c_str(),
                  static_cast<unsigned>(server.port()), active.empty() ? "" : " faults: ", active.c_str());
      std::fflush(stdout);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (uv_loop_close(&loop) != 0) {
    std::fprintf(stderr, "flowguard-backend: handles left open at exit\n");
    return 1;
  }
  return exitCode;
}
