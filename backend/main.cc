// flowguard-backend: a demo upstream for FlowGuard's tests and benchmarks.
#include <uv.h>

#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "backend/backend_server.h"

namespace {

struct SignalWatch {
  uv_signal_t sigint{};
  uv_signal_t sigterm{};
  flowguard::backend::BackendServer* server = nullptr;
};

void onSignal(uv_signal_t* handle, int) {
  auto* watch = static_cast<SignalWatch*>(handle->data);
  watch->server->shutdown();
  // With the signal handles closed as well, uv_run returns once connections are gone.
  uv_close(reinterpret_cast<uv_handle_t*>(&watch->sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&watch->sigterm), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  flowguard::backend::BackendOptions options;
  CLI::App app{"flowguard-backend: demo upstream server for FlowGuard"};
  app.add_option("--port", options.port, "TCP port (0: any free port)")->required();
  app.add_option("--name", options.name, "name reported in every response")->required();
  app.add_option("--host", options.host, "address to bind")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // A write to a peer that reset must be an error code, not a fatal signal.
  std::signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  int exitCode = 0;
  {
    flowguard::backend::BackendServer server(&loop, options);
    SignalWatch watch;
    watch.server = &server;
    uv_signal_init(&loop, &watch.sigint);
    uv_signal_init(&loop, &watch.sigterm);
    watch.sigint.data = &watch;
    watch.sigterm.data = &watch;

    int rc = server.start();
    if (rc != 0) {
      std::fprintf(stderr, "flowguard-backend: cannot listen on %s:%u: %s\n",
                   options.host.c_str(), static_cast<unsigned>(options.port), uv_strerror(rc));
      server.shutdown();
      uv_close(reinterpret_cast<uv_handle_t*>(&watch.sigint), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&watch.sigterm), nullptr);
      exitCode = 1;
    } else {
      uv_signal_start(&watch.sigint, onSignal, SIGINT);
      uv_signal_start(&watch.sigterm, onSignal, SIGTERM);
      std::printf("flowguard-backend %s listening on %s:%u\n", options.name.c_str(),
                  options.host.c_str(), static_cast<unsigned>(server.port()));
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
