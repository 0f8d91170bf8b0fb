// sipedge's datagram path: one UDP socket read with recvmmsg(2) in batches
// and written with sendmmsg(2) in batches, for transport/datagram-socket.ts.
//
// Why not node:dgram: for each datagram it allocates a 64 KiB receive
// buffer and shrinks it into an ArrayBuffer of its own (one more object for
// every incremental GC step to sweep), builds an rinfo object, and enters
// JavaScript through MakeCallback (a nextTick and microtask checkpoint per
// datagram); each send builds a SendWrap and a buffer list. Measured with
// `perf record -e cpu-clock` and `--cpu-prof` on the IO thread at 1 000
// calls/s (README, Cost per call): the proxy core was 95–130 µs of the
// thread's ~575 µs a call, the rest Node's datagram path, the kernel and GC.
// Here a batch of up to BATCH datagrams lands in one arena the JS side owns,
// with their sources in a table beside it, and JavaScript is entered once
// per batch. Sends made while a batch is handled (the forwards and answers
// it causes, on any socket of the thread) are copied into their socket's
// queue and leave together when the batch is done, one sendmmsg(2) per
// socket; any other send goes at once with sendto(2). A datagram the kernel
// cannot take (its send buffer full) is lost like any datagram, and SIP's
// retransmission covers it (RFC 3261 §17.1.1.2), where dgram would queue it
// without bound.
//
// Node-API (ABI-stable across Node versions) and libuv's uv_poll on the
// calling thread's loop, so every worker thread has its own sockets and
// never touches another's.
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// Datagrams read per turn of the event loop, as libuv's own UDP reads
// (src/unix/udp.c, uv__udp_recvmsg: "count = 32", against starving the
// loop's other sockets). A batch this full tells the CPU ration a backlog
// is left in the kernel (proxy/shedder.ts).
#define BATCH 32
// Room for the largest UDP payload (65 507 bytes over IPv4, 65 527 over
// IPv6): a datagram is never cut. Only the pages a datagram lands in are
// ever touched, so resident memory is what arrives, not BATCH × SLOT.
#define SLOT 65536
// Per datagram in the source table: length, port, family, text length of
// the address, the IPv4 address as a 32-bit key (0 for IPv6), padding.
#define META 8
// Room for an address as text: INET6_ADDRSTRLEN (46, with the NUL) and a
// link-local address's zone, "%" and an interface name (IFNAMSIZ 16).
#define TEXT 64
// Sends a socket holds for the end of a batch, and the room their bytes are
// copied into (allocated at the first, touched only as far as used): past
// either, the queue leaves at once and fills again. Why batch at all: on
// this VM a system call costs 1.2 µs before it does anything (getppid), and
// a 600-byte datagram over loopback cost 5.6–6.4 µs sent alone (sendto)
// against 3.1–3.8 µs each in eights (sendmmsg), receiving included: twenty
// thousand of each, twice. A call through sipedge is seven sends.
#define QUEUE 64
#define QUEUE_BYTES (256 * 1024)
// The largest UDP payloads (RFC 768 over IPv4, RFC 8200 over IPv6): a
// larger send is refused before it is queued, as sendto refused it.
#define MAX_DATAGRAM_IPV4 65507
#define MAX_DATAGRAM_IPV6 65527

typedef struct datagram_socket {
  uv_poll_t poll;
  napi_env env;
  int fd;
  int family;
  // Set once by close or the env's teardown; reads and sends stop.
  int closed;
  // The memory is freed when both libuv is done with the handle and the JS
  // handle is collected, whichever comes last.
  int handle_done;
  int external_gone;
  // Node waits for this hook's removal (when libuv is done with the handle)
  // before it ends the env and unloads the addon: a close callback left for
  // a worker's last loop run would jump into unmapped code.
  napi_async_cleanup_hook_handle teardown;
  napi_ref on_batch;
  napi_ref arena_ref;
  napi_ref meta_ref;
  napi_ref text_ref;
  napi_ref resource_ref;
  napi_async_context async;
  uint8_t* arena;
  int32_t* meta;
  char* text;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage from[BATCH];
  // Sends waiting for the end of the batch being handled, their bytes in `out`.
  int queued;
  size_t out_used;
  uint8_t* out;
  struct mmsghdr out_msgs[QUEUE];
  struct iovec out_iov[QUEUE];
  struct sockaddr_storage out_to[QUEUE];
  // On the thread's list of sockets with sends queued.
  int waiting;
  struct datagram_socket* next_waiting;
  // Queued sends the kernel refused when they left.
  uint32_t lost;
} datagram_socket;

// A batch is being handled on this thread, or a stream read (holdSends): its
// sends wait (each thread runs its own loop, sockets and batches, so the
// state is the thread's).
static __thread int in_batch;
static __thread datagram_socket* waiting;

static void maybe_free(datagram_socket* s) {
  if (s->handle_done && s->external_gone) {
    free(s->out);
    free(s);
  }
}

// The socket's queued sends go, in the order they were made. One the kernel
// refuses for its destination (no route, a firewall) is lost and counted,
// and those after it are still tried; a full send buffer loses the rest.
static void flush(datagram_socket* s) {
  int i = 0;
  while (i < s->queued) {
    int sent = sendmmsg(s->fd, s->out_msgs + i, (unsigned int)(s->queued - i), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent > 0) {
      i += sent;
      continue;
    }
    int err = sent < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      s->lost += (uint32_t)(s->queued - i);
      break;
    }
    s->lost++;
    i++;
  }
  s->queued = 0;
  s->out_used = 0;
}

// Sends what `s` has queued and takes it off the thread's list (it is closing).
static void unlist(datagram_socket* s) {
  if (!s->waiting) return;
  flush(s);
  for (datagram_socket** p = &waiting; *p != NULL; p = &(*p)->next_waiting) {
    if (*p == s) {
      *p = s->next_waiting;
      break;
    }
  }
  s->waiting = 0;
  s->next_waiting = NULL;
}

// The end of a batch: every socket's queued sends go.
static void flush_waiting(void) {
  while (waiting != NULL) {
    datagram_socket* s = waiting;
    waiting = s->next_waiting;
    s->waiting = 0;
    s->next_waiting = NULL;
    flush(s);
  }
}

// A batch or a stream read begins: sends wait for its end. True when this
// hold is the outer one; an inner one (holds nest) leaves the flush to it.
static int hold_sends(void) {
  int outer = !in_batch;
  in_batch = 1;
  return outer;
}

// The hold hold_sends() began ends; the outer one sends what waited.
static void release_sends(int outer) {
  if (!outer) return;
  in_batch = 0;
  flush_waiting();
}

// Holds one send for the end of the batch: 0, or the errno that lost it.
// `length` is at most a datagram's payload (js_send), well under QUEUE_BYTES.
static int queue(datagram_socket* s, const uint8_t* bytes, uint32_t length, const struct sockaddr_storage* to,
                 socklen_t to_length) {
  if (s->out == NULL && (s->out = malloc(QUEUE_BYTES)) == NULL) return ENOMEM;
  if (s->queued == QUEUE || s->out_used + length > QUEUE_BYTES) flush(s);
  int q = s->queued++;
  memcpy(s->out + s->out_used, bytes, length);
  s->out_iov[q].iov_base = s->out + s->out_used;
  s->out_iov[q].iov_len = length;
  s->out_used += length;
  memcpy(&s->out_to[q], to, sizeof *to);
  struct msghdr* h = &s->out_msgs[q].msg_hdr;
  memset(h, 0, sizeof *h);
  h->msg_name = &s->out_to[q];
  h->msg_namelen = to_length;
  h->msg_iov = &s->out_iov[q];
  h->msg_iovlen = 1;
  if (!s->waiting) {
    s->waiting = 1;
    s->next_waiting = waiting;
    waiting = s;
  }
  return 0;
}

static void on_handle_closed(uv_handle_t* handle) {
  datagram_socket* s = handle->data;
  // First: ending the env may run the external's finalizer, which must not free s yet.
  napi_remove_async_cleanup_hook(s->teardown);
  s->handle_done = 1;
  maybe_free(s);
}

static void on_external_gone(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  datagram_socket* s = data;
  s->external_gone = 1;
  maybe_free(s);
}

// Stops reading, closes the descriptor and lets go of the JS objects.
// `in_teardown`: the env is going away and runs no more JavaScript.
static void shut(datagram_socket* s, int in_teardown) {
  if (s->closed) return;
  s->closed = 1;
  unlist(s);
  uv_poll_stop(&s->poll);
  close(s->fd);
  uv_close((uv_handle_t*)&s->poll, on_handle_closed);
  napi_env env = s->env;
  if (!in_teardown) napi_async_destroy(env, s->async);
  napi_delete_reference(env, s->on_batch);
  napi_delete_reference(env, s->arena_ref);
  napi_delete_reference(env, s->meta_ref);
  napi_delete_reference(env, s->text_ref);
  napi_delete_reference(env, s->resource_ref);
}

// The env is ending (a worker's end, the process's exit) with the socket
// open; a socket closed already has its close callback still to come.
static void on_env_teardown(napi_async_cleanup_hook_handle handle, void* data) {
  (void)handle;
  shut(data, 1);
}

// A link-local address means nothing without its interface: named after a
// "%" as dgram did (Node's AddressToJS), so that a reply to the text goes
// back out of that interface. Left bare if the interface has just gone.
static void add_zone(const struct sockaddr_in6* a, char* text) {
  if (!IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) || a->sin6_scope_id == 0) return;
  size_t at = strlen(text);
  text[at] = '%';
  if (if_indextoname(a->sin6_scope_id, text + at + 1) == NULL) text[at] = '\0';
}

// Files one datagram's source in the table the JS side reads.
static void file_source(datagram_socket* s, int i, unsigned int length) {
  int32_t* m = s->meta + i * META;
  char* text = s->text + i * TEXT;
  m[0] = (int32_t)length;
  if (s->from[i].ss_family == AF_INET) {
    struct sockaddr_in* a = (struct sockaddr_in*)&s->from[i];
    m[1] = ntohs(a->sin_port);
    m[2] = 4;
    m[4] = (int32_t)ntohl(a->sin_addr.s_addr);
    inet_ntop(AF_INET, &a->sin_addr, text, TEXT);
  } else {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&s->from[i];
    m[1] = ntohs(a->sin6_port);
    m[2] = 6;
    m[4] = 0;
    inet_ntop(AF_INET6, &a->sin6_addr, text, TEXT);
    add_zone(a, text);
  }
  m[3] = (int32_t)strlen(text);
}

// An exception thrown by the batch handler is the process's, as one from
// any other callback (uncaughtException): the worker's own handling decides.
static void call_batch(datagram_socket* s, int count) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1];
  napi_get_reference_value(env, s->on_batch, &cb);
  napi_get_reference_value(env, s->resource_ref, &recv);
  napi_create_int32(env, count, &argv[0]);
  if (napi_make_callback(env, s->async, recv, cb, 1, argv, NULL) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t* handle, int status, int events) {
  (void)events;
  datagram_socket* s = handle->data;
  if (status < 0 || s->closed) return;
  for (int i = 0; i < BATCH; i++) s->msgs[i].msg_hdr.msg_namelen = sizeof(s->from[i]);
  int n = recvmmsg(s->fd, s->msgs, BATCH, MSG_DONTWAIT, NULL);
  // EAGAIN: another reader (a REUSEPORT sibling cannot, but a spurious wake
  // can) took it. Any other error concerns that read; the next wake retries.
  if (n <= 0) return;
  for (int i = 0; i < n; i++) file_source(s, i, s->msgs[i].msg_len);
  // libuv never runs a callback inside another, but should a batch ever start inside one, the outer one flushes.
  int outer = hold_sends();
  call_batch(s, n);
  release_sends(outer);
}

static napi_value throw_errno(napi_env env, const char* syscall, int err, const char* address, uint32_t port) {
  char message[160];
  const char* code = uv_err_name(uv_translate_sys_error(err));
  snprintf(message, sizeof message, "%s %s %s:%u", syscall, code, address, port);
  napi_throw_error(env, code, message);
  return NULL;
}

// Room for an address given as text: more than the longest literal with its
// interface (46 + "%" + 15), so a cut one is refused, never read as another.
#define ADDRESS 64

// `text` (read_address's: shorter than ADDRESS) as a socket address of
// `family`. An IPv6 address may name its interface after a "%" (fe80::1%eth0,
// as dgram took it); an interface that does not exist is refused.
static int fill_address(int family, const char* text, uint32_t port, struct sockaddr_storage* out, socklen_t* len) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    struct sockaddr_in* a = (struct sockaddr_in*)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *len = sizeof *a;
    return inet_pton(AF_INET, text, &a->sin_addr) == 1;
  }
  struct sockaddr_in6* a = (struct sockaddr_in6*)out;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)port);
  *len = sizeof *a;
  char address[ADDRESS];
  strcpy(address, text);
  char* zone = strchr(address, '%');
  if (zone != NULL) {
    *zone++ = '\0';
    a->sin6_scope_id = if_nametoindex(zone);
    if (a->sin6_scope_id == 0) return 0;
  }
  return inet_pton(AF_INET6, address, &a->sin6_addr) == 1;
}

// The bytes of a typed array of `want` elements (Uint8Array, Buffer; or
// Int32Array for the source table), and their count in `bytes`. Any other
// kind is refused: the callers count and index in these units, and an array
// of smaller elements would leave them writing past its end.
static void* typed_array_data(napi_env env, napi_value value, napi_typedarray_type want, size_t* bytes) {
  napi_typedarray_type type;
  size_t length, offset;
  void* data = NULL;
  napi_value buffer;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &offset) != napi_ok || type != want)
    return NULL;
  *bytes = want == napi_int32_array ? length * sizeof(int32_t) : length;
  return data;
}


// An address string into `out`, whole or not at all: one that does not fit,
// or with a NUL inside (C would read up to the NUL, "127.0.0.1\0…" as
// 127.0.0.1), is refused where dgram's isIP refused it too.
static int read_address(napi_env env, napi_value value, char out[ADDRESS]) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, out, ADDRESS, &length) != napi_ok) return 0;
  return length < ADDRESS - 1 && strlen(out) == length;
}

// open(ipv6, address, port, reusePort, receiveBuffer, sendBuffer, arena, meta, text, onBatch): a bound,
// reading socket's handle. Throws an Error whose code is the errno's name (EADDRINUSE), as dgram does.
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 10) {
    napi_throw_type_error(env, NULL, "open: 10 arguments");
    return NULL;
  }
  bool ipv6, reuse_port;
  uint32_t port, receive_buffer, send_buffer;
  char address[ADDRESS];
  if (napi_get_value_bool(env, argv[0], &ipv6) != napi_ok || !read_address(env, argv[1], address) ||
      napi_get_value_uint32(env, argv[2], &port) != napi_ok || napi_get_value_bool(env, argv[3], &reuse_port) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &receive_buffer) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &send_buffer) != napi_ok) {
    napi_throw_type_error(env, NULL, "open: (boolean, address string, port, boolean, number, number, ...)");
    return NULL;
  }
  size_t arena_bytes = 0, meta_bytes = 0, text_bytes = 0;
  uint8_t* arena = typed_array_data(env, argv[6], napi_uint8_array, &arena_bytes);
  int32_t* meta = typed_array_data(env, argv[7], napi_int32_array, &meta_bytes);
  char* text = typed_array_data(env, argv[8], napi_uint8_array, &text_bytes);
  if (arena == NULL || meta == NULL || text == NULL || arena_bytes < BATCH * SLOT ||
      meta_bytes < BATCH * META * sizeof(int32_t) || text_bytes < BATCH * TEXT) {
    napi_throw_range_error(env, NULL, "open: arena (Uint8Array), meta (Int32Array) or text (Uint8Array) too small");
    return NULL;
  }
  int family = ipv6 ? AF_INET6 : AF_INET;
  struct sockaddr_storage local;
  socklen_t local_length;
  if (port > 65535 || !fill_address(family, address, port, &local, &local_length)) {
    napi_throw_error(env, "EINVAL", "open: not an IP address of the socket's family, or a bad port");
    return NULL;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno, address, port);
  int on = 1;
  int rcv = (int)receive_buffer, snd = (int)send_buffer;
  if ((reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) ||
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) != 0 ||
      bind(fd, (struct sockaddr*)&local, local_length) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err, address, port);
  }
  datagram_socket* s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, "open", ENOMEM, address, port);
  }
  s->env = env;
  s->fd = fd;
  s->family = family;
  s->arena = arena;
  s->meta = meta;
  s->text = text;
  for (int i = 0; i < BATCH; i++) {
    s->iov[i].iov_base = arena + (size_t)i * SLOT;
    s->iov[i].iov_len = SLOT;
    s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
    s->msgs[i].msg_hdr.msg_iovlen = 1;
    s->msgs[i].msg_hdr.msg_name = &s->from[i];
  }
  napi_value resource, name, handle;
  napi_create_object(env, &resource);
  napi_create_string_latin1(env, "sipedge.datagram", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &s->async);
  napi_create_reference(env, resource, 1, &s->resource_ref);
  napi_create_reference(env, argv[6], 1, &s->arena_ref);
  napi_create_reference(env, argv[7], 1, &s->meta_ref);
  napi_create_reference(env, argv[8], 1, &s->text_ref);
  napi_create_reference(env, argv[9], 1, &s->on_batch);
  uv_loop_t* loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  napi_add_async_cleanup_hook(env, on_env_teardown, s, &s->teardown);
  napi_create_external(env, s, on_external_gone, NULL, &handle);
  return handle;
}

static datagram_socket* socket_of(napi_env env, napi_value value) {
  void* s = NULL;
  if (napi_get_value_external(env, value, &s) != napi_ok) return NULL;
  return s;
}

// The socket of a call whose one argument is the handle; NULL for anything else.
static datagram_socket* handle_argument(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc == 1 ? socket_of(env, argv[0]) : NULL;
}

// send(handle, bytes, length, port, address): 0, or the errno the kernel or
// the arguments gave (the datagram is then lost; the caller counts it). Made
// while a batch is handled, it is queued (0) and leaves when the batch ends:
// what the kernel refuses then, lost(handle) counts.
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  datagram_socket* s = argc == 5 ? socket_of(env, argv[0]) : NULL;
  size_t available = 0;
  uint8_t* bytes = s == NULL ? NULL : typed_array_data(env, argv[1], napi_uint8_array, &available);
  uint32_t length = 0, port = 0;
  char address[ADDRESS];
  struct sockaddr_storage to;
  socklen_t to_length;
  int err = 0;
  if (bytes == NULL || napi_get_value_uint32(env, argv[2], &length) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &port) != napi_ok ||
      !read_address(env, argv[4], address) ||
      length > available || port == 0 || port > 65535 || !fill_address(s->family, address, port, &to, &to_length)) {
    err = EINVAL;
  } else if (length > (s->family == AF_INET ? MAX_DATAGRAM_IPV4 : MAX_DATAGRAM_IPV6)) {
    err = EMSGSIZE;
  } else if (s->closed) {
    err = EBADF;
  } else if (in_batch) {
    err = queue(s, bytes, length, &to, to_length);
  } else if (sendto(s->fd, bytes, length, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr*)&to, to_length) < 0) {
    err = errno;
  }
  napi_create_int32(env, err, &result);
  return result;
}

// localPort(handle): the port the kernel bound (for a bind to port 0).
static napi_value js_local_port(napi_env env, napi_callback_info info) {
  napi_value result;
  datagram_socket* s = handle_argument(env, info);
  struct sockaddr_storage local;
  socklen_t length = sizeof local;
  uint32_t port = 0;
  if (s != NULL && !s->closed && getsockname(s->fd, (struct sockaddr*)&local, &length) == 0)
    port = ntohs(local.ss_family == AF_INET ? ((struct sockaddr_in*)&local)->sin_port
                                            : ((struct sockaddr_in6*)&local)->sin6_port);
  napi_create_uint32(env, port, &result);
  return result;
}

// lost(handle): queued sends lost so far (the kernel refused them when they
// left at a batch's end, or when a close sent them first).
static napi_value js_lost(napi_env env, napi_callback_info info) {
  napi_value result;
  datagram_socket* s = handle_argument(env, info);
  napi_create_uint32(env, s == NULL ? 0 : s->lost, &result);
  return result;
}

// close(handle): no read or send after it; closing twice is nothing.
static napi_value js_close(napi_env env, napi_callback_info info) {
  datagram_socket* s = handle_argument(env, info);
  if (s != NULL) shut(s, 0);
  return NULL;
}

static napi_value constant(napi_env env, int value) {
  napi_value v;
  napi_create_int32(env, value, &v);
  return v;
}

// holdSends(): sends made until releaseSends() wait for it, as in a batch; true when this hold is the outer one.
static napi_value js_hold(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_get_boolean(env, hold_sends(), &result);
  return result;
}

// releaseSends(outer): an outer hold ends: every socket's held sends go. Anything but false
// releases: a hold left on by a wrong argument would keep every send of the thread waiting.
static napi_value js_release(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool given = true;
  release_sends(napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
                napi_get_value_bool(env, argv[0], &given) != napi_ok || given);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localPort", NULL, js_local_port, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lost", NULL, js_lost, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"holdSends", NULL, js_hold, NULL, NULL, NULL, napi_enumerable, NULL},
      {"releaseSends", NULL, js_release, NULL, NULL, NULL, napi_enumerable, NULL},
      {"BATCH", NULL, NULL, NULL, NULL, constant(env, BATCH), napi_enumerable, NULL},
      {"SLOT", NULL, NULL, NULL, NULL, constant(env, SLOT), napi_enumerable, NULL},
      {"META", NULL, NULL, NULL, NULL, constant(env, META), napi_enumerable, NULL},
      {"TEXT", NULL, NULL, NULL, NULL, constant(env, TEXT), napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}
