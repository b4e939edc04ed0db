/* qtx_example_c: the C API of libqtx-host in one small program.
 *
 *   qtx_example_c SOCKET
 *
 * Connects to the agent behind SOCKET (QEMU's chardev socket for the VM's
 * org.quantix.agent.0 port), pings it, asks for the guest's hostname as
 * JSON and runs /bin/echo in the guest. Exit status: 0 on success, 1 on any
 * failure, 2 for a usage error. */
#include <qtx/host.h>

#include <stdio.h>

/* Runs on the manager's I/O thread: print and return, never block. `cause`
 * is only valid during the call. */
static void on_state(void* user, qtx_state state, const qtx_error* cause) {
  (void)user;
  if (cause != NULL) {
    printf("state: %s (%s: %s)\n", qtx_state_name(state), qtx_error_kind_name(cause->kind), cause->message);
  } else {
    printf("state: %s\n", qtx_state_name(state));
  }
}

/* exec output as it arrives (stream 1: stdout, 2: stderr), on the I/O thread. */
static void on_output(void* user, int stream, const char* data, size_t n) {
  (void)user;
  fwrite(data, 1, n, stream == 2 ? stderr : stdout);
}

int main(int argc, char** argv) {
  qtx_manager* manager = NULL;
  qtx_agent* agent = NULL;
  qtx_agent_options options;
  qtx_error err;
  const char* step = NULL; /* the call that failed, if any */
  char* json = NULL;
  const char* const echo_argv[] = {"/bin/echo", "hello from C", NULL};
  int exit_code = 0;
  int term_signal = 0;
  int rc = 1;

  if (argc != 2) {
    fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
    return 2;
  }

  /* The library may be newer than the header this was built with, never of
   * another major (the soname sees to that). */
  printf("libqtx-host %s (built against %d.%d.%d)\n", qtx_version_string(), QTX_VERSION_MAJOR, QTX_VERSION_MINOR,
         QTX_VERSION_PATCH);

  manager = qtx_manager_new();
  if (manager == NULL) {
    fprintf(stderr, "qtx_manager_new: out of memory\n");
    return 1;
  }

  qtx_agent_options_init(&options); /* sets struct_size; 0 selects every default */
  options.socket_path = argv[1];
  options.on_state = on_state;
  agent = qtx_agent_add(manager, &options, &err);
  if (agent == NULL) {
    step = "qtx_agent_add";
    goto done;
  }

  if (qtx_agent_wait_ready(agent, 10000, &err) != QTX_OK) {
    step = "qtx_agent_wait_ready";
    goto done;
  }
  if (qtx_agent_ping(agent, 5000, &err) != QTX_OK) {
    step = "qtx_agent_ping";
    goto done;
  }
  printf("ping: ok\n");

  /* Any single-answer request, as proto3 JSON of qtx.agent.v1.Request. */
  if (qtx_agent_call_json(agent, "{\"hostname_get\":{}}", 5000, &json, &err) != QTX_OK) {
    step = "qtx_agent_call_json";
    goto done;
  }
  printf("hostname_get: %s\n", json);
  qtx_free(json);
  json = NULL;

  if (qtx_agent_exec(agent, echo_argv, NULL, 0, 30000, on_output, NULL, &exit_code, &term_signal, &err) != QTX_OK) {
    step = "qtx_agent_exec";
    goto done;
  }
  if (term_signal != 0) {
    printf("echo: killed by signal %d\n", term_signal);
  } else {
    printf("echo: exit code %d\n", exit_code);
  }
  rc = 0;

done:
  if (step != NULL) fprintf(stderr, "%s: %s: %s\n", step, qtx_error_kind_name(err.kind), err.message);
  /* Every agent before its manager. */
  if (agent != NULL) qtx_agent_free(agent);
  qtx_manager_free(manager);
  return rc;
}
