/* make_corpus.c — writes the layer corpus at test time: hostile images (escapes by name,
 * symlink, hardlink, whiteout and opaque marker, in one layer and across layers; broken blobs;
 * over-long names; deep JSON; a decompression bomb) and legitimate ones that exercise the corners
 * of tar and whiteouts. Each case is an OCI layout OUT/<name> tagged "latest"; OUT/cases.tsv
 * says what reprobox must do with it; OUT/seeds/ holds each case's layer tars for the fuzzer.
 *
 * Usage: make_corpus OUT SENTINEL [BASE_TAR]
 *   SENTINEL  an absolute dir outside every rootfs that hostile entries aim at
 *   BASE_TAR  an uncompressed layer put under every case (a busybox, so `run` has a shell) */
#include "layers_testlib.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const char *out, *sentinel;
static char *base_tar;
static size_t base_len;
static FILE *cases;
static char *ups; /* "../" 40 times */

struct layer {
    struct tl_tar *t;
    bool truncate, corrupt, bad_diff_id;
};

/* Write OUT/<name>: the base layer (when given), then the case's layers. */
static void image(const char *name, const char *kind, const char *expect, struct layer *ls,
                  size_t n)
{
    struct tl_layer tl[8];
    char *keep[8];
    size_t k = 0;
    if (base_tar)
        tl[k++] = (struct tl_layer){
            .tar = base_tar, .len = base_len, .compression = RBX_COMPRESSION_GZIP};
    for (size_t i = 0; i < n; i++) {
        size_t len;
        keep[i] = tl_tar_finish(ls[i].t, &len);
        tl[k++] = (struct tl_layer){.tar = keep[i],
                                    .len = len,
                                    .compression = RBX_COMPRESSION_GZIP,
                                    .truncate_blob = ls[i].truncate,
                                    .corrupt_blob = ls[i].corrupt,
                                    .bad_diff_id = ls[i].bad_diff_id};
        _cleanup_free_ char *seed = rbx_xasprintf("%s-%zu.tar", name, i);
        _cleanup_free_ char *dir = rbx_xasprintf("%s/seeds/layer_tar", out);
        tl_write(dir, seed, keep[i], len);
    }
    _cleanup_free_ char *layout = rbx_xasprintf("%s/%s", out, name);
    tl_image(layout, "latest", tl, k, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        free(keep[i]);
    fprintf(cases, "%s\t%s\t%s\n", name, kind, expect ? expect : "");
}

static struct layer L(void) {
    return (struct layer){.t = tl_tar_new()};
}

/* ---- hostile: refused ------------------------------------------------------------------------ */

static void
hostile(void)
{
    _cleanup_free_ char *p = NULL;

    struct layer a = L();
    p = rbx_xasprintf("%s%s/planted", ups, sentinel + 1);
    tl_tar_file(a.t, p, "x", 0644);
    image("traversal", "refused", "escapes the rootfs", &a, 1);

    struct layer b = L();
    tl_tar_file(b.t, "ok", "x", 0644);
    free(p);
    p = rbx_xasprintf("%s%s/secret", ups, sentinel + 1);
    tl_tar_hardlink(b.t, "h", p);
    image("hardlink-out-relative", "refused", "escapes the rootfs", &b, 1);

    struct layer c = L();
    free(p);
    p = rbx_xasprintf("%s/secret", sentinel);
    tl_tar_hardlink(c.t, "h", p);
    image("hardlink-out-absolute", "refused", "hardlink", &c, 1);

    struct layer d[2] = {L(), L()};
    tl_tar_symlink(d[0].t, "root", "/");
    free(p);
    p = rbx_xasprintf("root%s/secret", sentinel);
    tl_tar_hardlink(d[1].t, "h", p);
    image("hardlink-through-symlink", "refused", "hardlink", d, 2);

    struct layer e = L();
    free(p);
    p = rbx_xasprintf("%s%s/.wh.secret", ups, sentinel + 1);
    tl_tar_file(e.t, p, "", 0644);
    image("whiteout-out-of-root", "refused", "escapes the rootfs", &e, 1);

    struct layer f = L();
    free(p);
    p = rbx_xasprintf("%s%s/.wh..wh..opq", ups, sentinel + 1);
    tl_tar_file(f.t, p, "", 0644);
    image("opaque-out-of-root", "refused", "escapes the rootfs", &f, 1);

    struct layer g = L();
    tl_tar_file(g.t, "etc/motd", "hello\n", 0644);
    tl_tar_file(g.t, "etc/more", "more\n", 0644);
    g.truncate = true;
    image("truncated-gzip", "refused", "truncated gzip stream", &g, 1);

    struct layer h = L();
    tl_tar_file(h.t, "etc/motd", "hello\n", 0644);
    h.corrupt = true;
    image("digest-mismatch", "refused", "digest mismatch", &h, 1);

    struct layer i = L();
    tl_tar_file(i.t, "etc/motd", "hello\n", 0644);
    i.bad_diff_id = true;
    image("diff-id-mismatch", "refused", "diff_id mismatch", &i, 1);

    struct layer j = L();
    _cleanup_free_ char *name = rbx_xmalloc(70001);
    for (size_t k = 0; k < 70000; k++)
        name[k] = k % 100 == 99 ? '/' : 'n';
    name[70000] = '\0';
    tl_tar_file(j.t, name, "x", 0644);
    image("name-70000", "refused", "limit 4096", &j, 1);

    struct layer k = L();
    tl_tar_symlink(k.t, "a", "b");
    tl_tar_symlink(k.t, "b", "a");
    tl_tar_file(k.t, "a/x", "x", 0644);
    image("symlink-loop", "refused", "symbolic links", &k, 1);
}

/* ---- hostile: neutralised inside the root ---------------------------------------------------- */

static void neutralised(void)
{
    _cleanup_free_ char *p = NULL;

    struct layer a = L();
    p = rbx_xasprintf("%s/planted", sentinel);
    tl_tar_file(a.t, p, "x", 0644);
    image("absolute-name", "neutralised", NULL, &a, 1);

    struct layer b = L();
    tl_tar_symlink(b.t, "out", sentinel);
    tl_tar_file(b.t, "out/planted", "x", 0644);
    tl_tar_symlink(b.t, "up", ups);
    free(p);
    p = rbx_xasprintf("up%s/planted2", sentinel);
    tl_tar_file(b.t, p, "x", 0644);
    image("symlink-escape-one-layer", "neutralised", NULL, &b, 1);

    struct layer c[2] = {L(), L()};
    tl_tar_symlink(c[0].t, "out", sentinel);
    tl_tar_symlink(c[0].t, "up", ups);
    tl_tar_file(c[1].t, "out/planted", "x", 0644);
    free(p);
    p = rbx_xasprintf("up%s/planted2", sentinel);
    tl_tar_file(c[1].t, p, "x", 0644);
    tl_tar_dir(c[1].t, "out/newdir", 0777);
    image("symlink-escape-across-layers", "neutralised", NULL, c, 2);

    struct layer d[2] = {L(), L()};
    tl_tar_symlink(d[0].t, "out", sentinel);
    tl_tar_symlink(d[0].t, "up", ups);
    tl_tar_file(d[1].t, "out/.wh.secret", "", 0644);
    free(p);
    p = rbx_xasprintf("up%s/.wh.secret", sentinel);
    tl_tar_file(d[1].t, p, "", 0644);
    image("whiteout-through-symlink", "neutralised", NULL, d, 2);

    struct layer e[2] = {L(), L()};
    tl_tar_symlink(e[0].t, "out", sentinel);
    tl_tar_file(e[1].t, "out/.wh..wh..opq", "", 0644);
    image("opaque-through-symlink", "neutralised", NULL, e, 2);

    struct layer f = L();
    const char *const x[] = {"trusted.overlay.opaque=y", "user.overlay.opaque=y",
                             "user.overlay.redirect=/etc", NULL};
    tl_tar_dir(f.t, "forged", 0755);
    tl_tar_file_ex(f.t, "forged/file", "x", 0644, 0, 0, 1000000000, x);
    image("forged-overlay-xattrs", "neutralised", NULL, &f, 1);
}

/* ---- legitimate: every tool must agree on the tree ------------------------------------------ */

static void legit(void)
{
    struct layer a[3] = {L(), L(), L()};
    tl_tar_file(a[0].t, "etc/keep", "k", 0644);
    tl_tar_file(a[0].t, "etc/gone", "g", 0644);
    tl_tar_file(a[0].t, "opt/data/a", "a", 0644);
    tl_tar_file(a[0].t, "opt/data/sub/b", "b", 0644);
    tl_tar_file(a[0].t, "srv/tree/x", "x", 0644);
    tl_tar_file(a[1].t, "etc/.wh.gone", "", 0644);
    tl_tar_file(a[1].t, "opt/data/.wh..wh..opq", "", 0644);
    tl_tar_file(a[1].t, "opt/data/c", "c", 0644);
    tl_tar_file(a[1].t, "srv/.wh.tree", "", 0644);
    tl_tar_dir(a[2].t, "srv/tree", 0700);
    tl_tar_file(a[2].t, "srv/tree/y", "y", 0600);
    image("legit-whiteouts", "legit", NULL, a, 3);

    struct layer b[2] = {L(), L()};
    tl_tar_file_ex(b[0].t, "bin/tool", "tool", 04755, 0, 0, 1000000000, NULL);
    tl_tar_hardlink(b[0].t, "bin/tool2", "bin/tool");
    tl_tar_symlink(b[0].t, "bin/sl", "tool");
    tl_tar_hardlink(b[0].t, "bin/sl2", "bin/sl");
    tl_tar_hardlink(b[1].t, "usr/bin/tool3", "bin/tool");
    image("legit-hardlinks", "legit", NULL, b, 2);

    struct layer c[2] = {L(), {.t = tl_tar_new_format(ARCHIVE_FORMAT_TAR_GNUTAR)}};
    char comp[201];
    memset(comp, 'l', 200);
    comp[200] = '\0';
    _cleanup_free_ char *pax = rbx_xasprintf("pax/%s/%s/file", comp, comp);
    _cleanup_free_ char *gnu = rbx_xasprintf("gnu/%s/%s/file", comp, comp);
    _cleanup_free_ char *gl = rbx_xasprintf("gnu/%s/link", comp);
    tl_tar_file(c[0].t, pax, "pax", 0644);
    tl_tar_file(c[1].t, gnu, "gnu", 0644);
    tl_tar_symlink(c[1].t, gl, pax);
    image("legit-long-names", "legit", NULL, c, 2);

    struct layer d = L();
    const size_t segs[] = {0, 10, 8192, 4096, 70000, 1};
    tl_tar_sparse(d.t, "var/sparse", 1 << 20, segs, 3);
    image("legit-sparse", "legit", NULL, &d, 1);

    struct layer e[2] = {L(), L()};
    tl_tar_dir(e[0].t, "usr/lib", 0755);
    tl_tar_symlink(e[0].t, "lib", "usr/lib");
    tl_tar_symlink(e[0].t, "etc/alt", "/usr/share/alt");
    tl_tar_file(e[1].t, "lib/libx.so", "x", 0755);
    image("legit-usrmerge", "legit", NULL, e, 2);

    struct layer f[3] = {L(), L(), L()};
    tl_tar_file(f[0].t, "x/inner", "i", 0644);
    tl_tar_dir(f[0].t, "ro", 0555);
    tl_tar_file(f[0].t, "ro/inside", "i", 0444);
    tl_tar_file(f[1].t, "x", "now a file", 0600);
    tl_tar_file(f[1].t, "dup", "first", 0644);
    tl_tar_file(f[1].t, "dup", "second", 0640);
    tl_tar_dir(f[2].t, "x", 0711);
    tl_tar_file(f[2].t, "x/again", "a", 0644);
    tl_tar_file(f[2].t, "deep/implied/parents/file", "f", 0644);
    image("legit-replace", "legit", NULL, f, 3);

    struct layer g = L();
    const char *const x[] = {"user.comment=hello", NULL};
    tl_tar_file_ex(g.t, "home/u/file", "u", 0640, 1000, 1000, 1234567890, x);
    tl_tar_dir(g.t, "tmp", 01777);
    tl_tar_fifo(g.t, "run/fifo");
    tl_tar_chardev(g.t, "dev/null", 1, 3);
    image("legit-special", "legit", NULL, &g, 1);
}

/* ---- deep JSON and the bomb: written by hand ------------------------------------------------ */

static void write_index(const char *layout, const char *mdigest, size_t msize)
{
    _cleanup_free_ char *idx = rbx_xasprintf(
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest."
        "v1+json\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":{\"org.opencontainers.image."
        "ref.name\":\"latest\"}}]}",
        mdigest, msize);
    tl_layout_raw(layout, idx);
}

static void deep_json(void)
{
    _cleanup_free_ char *layout = rbx_xasprintf("%s/deep-json", out);
    size_t depth = 100000;
    _cleanup_free_ char *cfg = rbx_xmalloc(2 * depth + 64);
    size_t n = (size_t)sprintf(cfg, "{\"config\":");
    memset(cfg + n, '[', depth);
    n += depth;
    memset(cfg + n, ']', depth);
    n += depth;
    n += (size_t)sprintf(cfg + n, "}");
    char cd[RBX_DIGEST_LEN + 1], md[RBX_DIGEST_LEN + 1];
    tl_blob(layout, cfg, n, cd);
    _cleanup_free_ char *m = rbx_xasprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"%s\",\"size\":%zu},\"layers\":[]}",
        cd, n);
    tl_blob(layout, m, strlen(m), md);
    write_index(layout, md, strlen(m));
    fprintf(cases, "deep-json\trefused\tnested\n");
}

/* A tar entry claiming 1 GiB, gzip'd while streaming (never held): about 1 MiB of blob. */
static void bomb(void)
{
    _cleanup_free_ char *layout = rbx_xasprintf("%s/bomb", out);
    _cleanup_free_ char *tmp = rbx_xasprintf("%s/bomb.gz", out);
    FILE *f = fopen(tmp, "w");
    if (!f)
        abort();
    /* A ustar header, by hand: name, mode, size in octal, checksum. */
    char hdr[512] = {0};
    strcpy(hdr, "zeros");
    strcpy(hdr + 100, "0000644");
    strcpy(hdr + 108, "0000000");
    strcpy(hdr + 116, "0000000");
    snprintf(hdr + 124, 12, "%011llo", 1ull << 30);
    strcpy(hdr + 136, "00000000000");
    hdr[156] = '0';
    memcpy(hdr + 257, "ustar", 6);
    memcpy(hdr + 263, "00", 2);
    memset(hdr + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof(hdr); i++)
        sum += (unsigned char)hdr[i];
    snprintf(hdr + 148, 8, "%06o", sum);
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    struct rbx_sha256 *h = rbx_sha256_new();
    static char zeros[1 << 16], obuf[1 << 16];
    uint64_t left = ((uint64_t)1 << 30) + 1024; /* the data, then the end-of-archive blocks */
    bool header = true;
    for (;;) {
        const char *in = header ? hdr : zeros;
        size_t inlen = header ? 512 : (left < sizeof(zeros) ? (size_t)left : sizeof(zeros));
        if (!header)
            left -= inlen;
        header = false;
        rbx_sha256_update(h, in, inlen);
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)inlen;
        int flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
        do {
            z.next_out = (Bytef *)obuf;
            z.avail_out = sizeof(obuf);
            deflate(&z, flush);
            fwrite(obuf, 1, sizeof(obuf) - z.avail_out, f);
        } while (z.avail_out == 0);
        if (flush == Z_FINISH)
            break;
    }
    deflateEnd(&z);
    fclose(f);
    char diff[RBX_DIGEST_LEN + 1];
    rbx_sha256_final(h, diff);
    rbx_sha256_free(h);
    char *blob = NULL;
    size_t blen = 0;
    if (rbx_read_file_at(AT_FDCWD, tmp, 64 << 20, &blob, &blen, NULL) < 0)
        abort();
    unlink(tmp);
    char bd[RBX_DIGEST_LEN + 1], cd[RBX_DIGEST_LEN + 1], md[RBX_DIGEST_LEN + 1];
    tl_blob(layout, blob, blen, bd);
    char *ids[] = {diff, NULL};
    _cleanup_free_ char *cfg = tl_config_json(ids);
    tl_blob(layout, cfg, strlen(cfg), cd);
    _cleanup_free_ char *m = rbx_xasprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1."
        "tar+gzip\",\"digest\":\"%s\",\"size\":%zu}]}",
        cd, strlen(cfg), bd, blen);
    tl_blob(layout, m, strlen(m), md);
    write_index(layout, md, strlen(m));
    free(blob);
    fprintf(cases, "bomb\trefused\texpands to more than\n");
}

int main(int argc, char **argv)
{
    if (argc < 3 || argv[2][0] != '/') {
        fprintf(stderr, "usage: make_corpus OUT /ABSOLUTE/SENTINEL [BASE_TAR]\n");
        return 2;
    }
    out = argv[1];
    sentinel = argv[2];
    if (argc > 3 && rbx_read_file_at(AT_FDCWD, argv[3], 64 << 20, &base_tar, &base_len, NULL) < 0) {
        fprintf(stderr, "make_corpus: cannot read %s\n", argv[3]);
        return 1;
    }
    ups = rbx_xmalloc(3 * 40 + 1);
    for (int i = 0; i < 40; i++)
        memcpy(ups + 3 * i, "../", 3);
    ups[120] = '\0';
    if (mkdir(out, 0755) < 0 && errno != EEXIST) {
        perror(out);
        return 1;
    }
    _cleanup_free_ char *list = rbx_xasprintf("%s/cases.tsv", out);
    cases = fopen(list, "w");
    if (!cases)
        return 1;
    hostile();
    neutralised();
    legit();
    deep_json();
    bomb();
    fclose(cases);
    free(ups);
    free(base_tar);
    return 0;
}
