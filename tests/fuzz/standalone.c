/* A small stand-in for libFuzzer's driver, so that every fuzz target also
 * runs in the ordinary (gcc, sanitizer) test suite: it feeds each file of the
 * given corpus directories to LLVMFuzzerTestOneInput, then a bounded number
 * of deterministic random mutations of them (-runs=N, default 10000).
 * With -DMB_FUZZ=ON and clang the real libFuzzer is used instead. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seed {
    uint8_t *data;
    size_t size;
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static int load_file(const char *path, struct seed *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return -1;
    }
    long len = ftell(f);
    if (len < 0 || len > (1 << 20)) {
        fclose(f);
        return -1;
    }
    rewind(f);
    out->data = malloc((size_t)len + 1);
    out->size = out->data ? fread(out->data, 1, (size_t)len, f) : 0;
    fclose(f);
    return out->data ? 0 : -1;
}

int main(int argc, char **argv)
{
    long runs = 10000;
    struct seed *seeds = NULL;
    size_t nseeds = 0, cap = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-runs=", 6) == 0) {
            runs = strtol(argv[i] + 6, NULL, 10);
            continue;
        }
        struct stat st;
        if (stat(argv[i], &st) != 0)
            continue; /* a target with no corpus yet still gets random input */
        DIR *dir = S_ISDIR(st.st_mode) ? opendir(argv[i]) : NULL;
        struct dirent *de;
        while (1) {
            char path[4096];
            if (dir != NULL) {
                de = readdir(dir);
                if (de == NULL)
                    break;
                if (de->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
            } else {
                snprintf(path, sizeof(path), "%s", argv[i]);
            }
            if (nseeds == cap) {
                cap = cap ? cap * 2 : 16;
                seeds = realloc(seeds, cap * sizeof(*seeds));
                if (seeds == NULL)
                    return 1;
            }
            if (load_file(path, &seeds[nseeds]) == 0) {
                LLVMFuzzerTestOneInput(seeds[nseeds].data, seeds[nseeds].size);
                nseeds++;
            }
            if (dir == NULL)
                break;
        }
        if (dir != NULL)
            closedir(dir);
    }
    uint8_t buf[4096];
    for (long r = 0; r < runs; r++) {
        size_t len;
        if (nseeds > 0) {
            struct seed *s = &seeds[rng_next() % nseeds];
            len = s->size < sizeof(buf) ? s->size : sizeof(buf);
            memcpy(buf, s->data, len);
            unsigned flips = 1 + (unsigned)(rng_next() % 8);
            for (unsigned k = 0; k < flips && len > 0; k++) {
                size_t pos = rng_next() % len;
                switch (rng_next() % 4) {
                case 0:
                    buf[pos] = (uint8_t)rng_next();
                    break;
                case 1:
                    buf[pos] ^= (uint8_t)(1u << (rng_next() % 8));
                    break;
                case 2:
                    len = pos; /* truncate */
                    break;
                default:
                    if (len < sizeof(buf)) {
                        memmove(buf + pos + 1, buf + pos, len - pos);
                        buf[pos] = (uint8_t)rng_next();
                        len++;
                    }
                }
            }
        } else {
            len = rng_next() % 256;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rng_next();
        }
        /* Hand the target an exact-size heap copy so ASan sees overreads. */
        uint8_t *copy = malloc(len ? len : 1);
        if (copy == NULL)
            return 1;
        memcpy(copy, buf, len);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
    }
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].data);
    free(seeds);
    printf("fuzz: %zu seeds, %ld mutated runs, no crash\n", nseeds, runs);
    return 0;
}
