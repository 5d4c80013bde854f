/* RFC 7641 section 4 and RFC 7959 section 2.2: bench/observe_bench_server.cpp's counterpart on
 * libcoap 4.3.1 (Debian's libcoap3-dev, -lcoap-3-notls), measured against it by
 * bench/run_observe_bench. Same resources, same answers:
 *   GET /obs   observable (notifications NON, every fifth CON: libcoap's default); answers 2.05,
 *              text/plain, the number of notify rounds so far (8 digits).
 *   POST /go   starts notifying: coap_resource_notify_observers() then
 *              coap_io_process(COAP_IO_NO_WAIT), back to back (libcoap sends the notifications
 *              of a dirty resource from coap_io_process).
 *   POST /stop stops notifying.
 *   GET /big   a --big-size byte body (default 1 MiB, bytes 0..255 repeated), block-wise by
 *              libcoap (coap_add_data_large_response, COAP_BLOCK_USE_LIBCOAP).
 * --non-only: notifications always NON (COAP_RESOURCE_FLAGS_NOTIFY_NON_ALWAYS).
 * Default context settings otherwise. On SIGTERM/SIGINT it prints one line of key=value pairs
 * starting with "libcoap_observe_server" (rounds, handler calls while notifying) and exits.
 *
 * Usage: libcoap_observe_server [--host 127.0.0.1] [--port 5683] [--big-size 1048576] [--non-only] */
#include <coap3/coap.h>

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t quit;
static int running;
static unsigned long long rounds, notifications_built, starts;
static uint8_t* big;
static size_t big_size = 1u << 20;

static void on_signal(int sig) {
  (void)sig;
  quit = 1;
}

static void hnd_get_obs(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                        const coap_string_t* query, coap_pdu_t* response) {
  char text[24];
  const int len = snprintf(text, sizeof text, "%08llu", rounds); /* fixed width, as coap-cpp's */
  if (running) ++notifications_built;
  coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT);
  /* Observe is added by libcoap for a registration and for every notification. */
  coap_add_data_large_response(resource, session, request, response, query, COAP_MEDIATYPE_TEXT_PLAIN, -1, 0,
                               (size_t)len, (const uint8_t*)text, NULL, NULL);
}

static void hnd_post_go(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                        const coap_string_t* query, coap_pdu_t* response) {
  (void)resource, (void)session, (void)request, (void)query;
  if (!running) ++starts;
  running = 1;
  coap_pdu_set_code(response, COAP_RESPONSE_CODE_CHANGED);
}

static void hnd_post_stop(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                          const coap_string_t* query, coap_pdu_t* response) {
  (void)resource, (void)session, (void)request, (void)query;
  running = 0;
  coap_pdu_set_code(response, COAP_RESPONSE_CODE_CHANGED);
}

static void hnd_get_big(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
                        const coap_string_t* query, coap_pdu_t* response) {
  coap_pdu_set_code(response, COAP_RESPONSE_CODE_CONTENT);
  coap_add_data_large_response(resource, session, request, response, query, COAP_MEDIATYPE_APPLICATION_OCTET_STREAM,
                               -1, 0, big_size, big, NULL, NULL);
}

static coap_resource_t* add(coap_context_t* ctx, const char* path, coap_request_t method,
                            coap_method_handler_t handler, int flags) {
  coap_resource_t* r = coap_resource_init(coap_make_str_const(path), flags);
  coap_register_handler(r, method, handler);
  coap_add_resource(ctx, r);
  return r;
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  unsigned port = 5683;
  int obs_flags = COAP_RESOURCE_FLAGS_NOTIFY_NON;
  for (int i = 1; i < argc; ++i) {
    const int has_value = i + 1 < argc;
    if (strcmp(argv[i], "--non-only") == 0) obs_flags = COAP_RESOURCE_FLAGS_NOTIFY_NON_ALWAYS;
    else if (has_value && strcmp(argv[i], "--host") == 0) host = argv[++i];
    else if (has_value && strcmp(argv[i], "--port") == 0) port = (unsigned)strtoul(argv[++i], NULL, 10);
    else if (has_value && strcmp(argv[i], "--big-size") == 0) big_size = strtoul(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: libcoap_observe_server [--host 127.0.0.1] [--port 5683] [--big-size N] [--non-only]\n");
      return 2;
    }
  }
  big = malloc(big_size ? big_size : 1);
  if (!big) return 1;
  for (size_t i = 0; i < big_size; ++i) big[i] = (uint8_t)i;

  coap_startup();
  coap_set_log_level(LOG_WARNING);
  coap_context_t* ctx = coap_new_context(NULL);
  if (!ctx) return 1;
  coap_context_set_block_mode(ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  coap_address_t address;
  coap_address_init(&address);
  address.addr.sin.sin_family = AF_INET;
  address.addr.sin.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &address.addr.sin.sin_addr) != 1) {
    fprintf(stderr, "libcoap_observe_server: --host must be a numeric IPv4 address\n");
    return 2;
  }
  address.size = sizeof address.addr.sin;
  if (!coap_new_endpoint(ctx, &address, COAP_PROTO_UDP)) {
    fprintf(stderr, "libcoap_observe_server: cannot listen on %s:%u\n", host, port);
    return 1;
  }
  coap_resource_t* obs = add(ctx, "obs", COAP_REQUEST_GET, hnd_get_obs, obs_flags);
  coap_resource_set_get_observable(obs, 1);
  add(ctx, "go", COAP_REQUEST_POST, hnd_post_go, 0);
  add(ctx, "stop", COAP_REQUEST_POST, hnd_post_stop, 0);
  add(ctx, "big", COAP_REQUEST_GET, hnd_get_big, 0);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  printf("libcoap_observe_server listening on %s:%u\n", host, port);
  fflush(stdout);

  while (!quit) {
    if (running) {
      ++rounds;
      coap_resource_notify_observers(obs, NULL);
      coap_io_process(ctx, COAP_IO_NO_WAIT);
    } else {
      coap_io_process(ctx, 100);
    }
  }
  printf("libcoap_observe_server starts=%llu rounds=%llu notifications_built=%llu\n", starts, rounds,
         notifications_built);
  coap_free_context(ctx);
  coap_cleanup();
  free(big);
  return 0;
}
