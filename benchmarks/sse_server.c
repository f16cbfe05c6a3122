/* A canned llama.cpp-style SSE chat server in C, for benchmarks/fast_server.py (a benchmark
 * tool, not a test): one thread, epoll, nonblocking sockets, so that it costs a few
 * microseconds of CPU per event and leaves the machine's cores to the client it measures.
 *
 *   sse_server PORT   prints "ready" once listening on 127.0.0.1:PORT (SO_REUSEPORT: several
 *                     processes may share the port, the kernel spreads connections)
 *
 * Each POST gets what fast_server.py's Python server sends: HTTP/1.1 chunked, a role event,
 * `max_tokens` content events with llama.cpp's per-chunk `timings` (cumulative predicted_n),
 * a finish event, a usage event and [DONE]; the connection is kept alive. The body's
 * "ttft_ms" and "itl_ms" pace it (a 1 ms timer granularity); with itl_ms 0 every connection
 * gets up to BURST events in one write per pass over them, round robin, as from a server
 * streaming many requests at once as fast as it can (one write per event cost the server about
 * what the client spends per token). Nothing else of HTTP is understood. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXFD 65536
#define INBUF 65536
#define BURST 8

typedef struct {
  int open, streaming;
  size_t in_len;
  long n, next;           /* tokens asked; next event: 0 role, 1..n content, n+1 finish, n+2 usage, n+3 done */
  long long due, itl, t0; /* ns */
  char out[BURST * 1024 + 512];
  size_t out_off, out_len; /* bytes of `out` not yet written */
  char in[INBUF];          /* last: a new connection clears what is before it */
} Conn;

static Conn *conns;
static int active[MAXFD], n_active, ep;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double num(const char *body, const char *key, double dflt) {
  const char *p = strstr(body, key);
  if (!p) return dflt;
  p += strlen(key);
  while (*p == ' ' || *p == ':') p++;
  return strtod(p, NULL);
}

static void drop(int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  conns[fd].open = conns[fd].streaming = 0;
  for (int i = 0; i < n_active; i++)
    if (active[i] == fd) { active[i] = active[--n_active]; break; }
}

static size_t chunk(char *dst, const char *data, int len) {
  int h = sprintf(dst, "%x\r\n", len);
  memcpy(dst + h, data, len);
  memcpy(dst + h + len, "\r\n", 2);
  return h + len + 2;
}

#define BASE "\"created\":1,\"id\":\"chatcmpl-fast\",\"model\":\"fast\",\"system_fingerprint\":\"b0\"," \
             "\"object\":\"chat.completion.chunk\""

/* The next event of c appended to c->out at `off`, as a chunk (with the headers before the
 * first); returns the new end. */
static size_t render(Conn *c, size_t off) {
  char ev[1024];
  int len;
  long i = c->next;
  if (i == 0) {
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
    memcpy(c->out + off, head, sizeof head - 1);
    off += sizeof head - 1;
    len = sprintf(ev, "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"role\":\"assistant\","
                      "\"content\":null}}]," BASE "}\n\n");
  } else if (i <= c->n) {
    len = sprintf(ev, "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\" tok\"}}],"
                      BASE ",\"timings\":{\"cache_n\":0,\"prompt_n\":8,\"prompt_ms\":1.2,\"prompt_per_token_ms\":0.15,"
                      "\"prompt_per_second\":6666.6,\"predicted_n\":%ld,\"predicted_ms\":%ld.0,"
                      "\"predicted_per_token_ms\":1.0,\"predicted_per_second\":1000.0}}\n\n", i, i);
  } else if (i == c->n + 1) {
    len = sprintf(ev, "data: {\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"delta\":{}}]," BASE "}\n\n");
  } else if (i == c->n + 2) {
    len = sprintf(ev, "data: {\"choices\":[]," BASE ",\"usage\":{\"completion_tokens\":%ld,\"prompt_tokens\":8,"
                      "\"total_tokens\":%ld},\"timings\":{\"predicted_n\":%ld}}\n\n", c->n, c->n + 8, c->n);
  } else {
    len = sprintf(ev, "data: [DONE]\n\n");
  }
  off += chunk(c->out + off, ev, len);
  if (i == c->n + 3) {
    memcpy(c->out + off, "0\r\n\r\n", 5);
    off += 5;
  }
  return off;
}

/* Write what is pending; 1 when all of it went out. */
static int flush(int fd) {
  Conn *c = &conns[fd];
  while (c->out_len) {
    ssize_t w = write(fd, c->out + c->out_off, c->out_len);
    if (w < 0) {
      if (errno == EAGAIN) {
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
        return 0;
      }
      drop(fd);
      return 0;
    }
    c->out_off += w;
    c->out_len -= w;
  }
  return 1;
}

/* Send c's next event (unpaced: up to BURST of them in one write, so the server's CPU per
 * event stays far below the client's); its pacing and, after [DONE], back to reading. */
static void step(int fd, long long now) {
  Conn *c = &conns[fd];
  size_t off = 0;
  long i;
  int k = 0;
  do {
    off = render(c, off);
    i = c->next++;
  } while (!c->itl && c->next > 1 && i < c->n + 3 && ++k < BURST);
  c->out_off = 0;
  c->out_len = off;
  if (i >= c->n + 3) {
    c->streaming = 0;
    for (int k = 0; k < n_active; k++)
      if (active[k] == fd) { active[k] = active[--n_active]; break; }
  } else if (i >= 1) {
    c->due = c->itl ? c->due + c->itl : now;
  }
  flush(fd);
}

/* A whole request in c->in: start its reply. */
static void request(int fd, long long now) {
  Conn *c = &conns[fd];
  c->in[c->in_len] = 0;
  char *end = strstr(c->in, "\r\n\r\n");
  if (!end) return;
  long size = 0;
  for (char *p = c->in; p < end; p++)
    if ((p == c->in || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) size = atol(p + 15);
  char *body = end + 4;
  if ((long)(c->in_len - (body - c->in)) < size) return;
  body[size] = 0;
  c->n = (long)num(body, "\"max_tokens\"", 16);
  c->itl = (long long)(num(body, "\"itl_ms\"", 0) * 1e6);
  long long ttft = (long long)(num(body, "\"ttft_ms\"", 0) * 1e6);
  c->in_len = 0; /* one request at a time: aiohttp does not pipeline */
  c->next = 0;
  c->streaming = 1;
  active[n_active++] = fd;
  step(fd, now);
  c->due = now + ttft;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: sse_server PORT\n");
    return 2;
  }
  conns = calloc(MAXFD, sizeof(Conn));
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) {
    perror("sse_server");
    return 1;
  }
  ep = epoll_create1(0);
  struct epoll_event le = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &le);
  printf("ready\n");
  fflush(stdout);
  struct epoll_event evs[512];
  for (;;) {
    long long now = now_ns(), next_due = -1;
    int sent = 0;
    for (int k = n_active - 1; k >= 0; k--) { /* one event per due connection per pass */
      int fd = active[k];
      Conn *c = &conns[fd];
      if (c->out_len) continue; /* still writing the last one */
      if (c->due <= now) {
        step(fd, now);
        sent = 1;
      } else if (next_due < 0 || c->due < next_due) {
        next_due = c->due;
      }
    }
    int timeout = sent ? 0 : next_due < 0 ? -1 : (int)((next_due - now + 999999) / 1000000);
    int n = epoll_wait(ep, evs, 512, timeout);
    now = now_ns();
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int s;
        while ((s = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (s >= MAXFD) { close(s); continue; }
          setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          memset(&conns[s], 0, offsetof(Conn, in));
          conns[s].open = 1;
          struct epoll_event e = {.events = EPOLLIN, .data.fd = s};
          epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
        }
        continue;
      }
      Conn *c = &conns[fd];
      if (!c->open) continue;
      if (evs[i].events & EPOLLOUT) {
        if (flush(fd)) {
          struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
        }
        if (!c->open) continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t r = read(fd, c->in + c->in_len, INBUF - 1 - c->in_len);
        if (r <= 0) {
          if (r < 0 && errno == EAGAIN) continue;
          drop(fd);
          continue;
        }
        c->in_len += r;
        if (!c->streaming) request(fd, now);
      }
    }
  }
}
