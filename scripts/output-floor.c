// The least any program can spend producing an N-byte output file, used by
// scripts/bench-core.sh as the ceiling of the `cifer`/`age` ratios: write(2) from one
// cache-hot 1 MiB buffer, or ftruncate + mmap + memcpy from two threads (page faults of a
// shared mapping run in parallel, where write(2) holds the inode lock). No input is read
// and nothing is computed, so an encryptor or decryptor writing N bytes costs at least this.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char buf[1 << 20];
struct part { char *base; size_t from, to; };

static void *fill(void *arg) {
  struct part *p = arg;
  for (size_t off = p->from; off < p->to; off += sizeof buf) {
    size_t n = p->to - off < sizeof buf ? p->to - off : sizeof buf;
    memcpy(p->base + off, buf, n);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: floor write|mmap2 FILE BYTES\n"); return 2; }
  size_t len = strtoull(argv[3], NULL, 10);
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(i * 131 + 7);
  int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) { perror("open"); return 1; }
  if (strcmp(argv[1], "write") == 0) {
    for (size_t off = 0; off < len;) {
      size_t n = len - off < sizeof buf ? len - off : sizeof buf;
      ssize_t w = write(fd, buf, n);
      if (w <= 0) { perror("write"); return 1; }
      off += (size_t)w;
    }
  } else if (strcmp(argv[1], "mmap2") == 0) {
    if (ftruncate(fd, (off_t)len) != 0) { perror("ftruncate"); return 1; }
    char *m = mmap(NULL, len, PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    size_t half = (len / 2) & ~(size_t)4095;
    struct part a = {m, 0, half}, b = {m, half, len};
    pthread_t t;
    if (pthread_create(&t, NULL, fill, &b) != 0) { fprintf(stderr, "pthread_create failed\n"); return 1; }
    fill(&a);
    pthread_join(t, NULL);
    munmap(m, len);
  } else { fprintf(stderr, "unknown mode\n"); return 2; }
  if (close(fd) != 0) { perror("close"); return 1; }
  return 0;
}
