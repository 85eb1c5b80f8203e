/* fuzz_layers_tar.c — libFuzzer target for layers/' tar-entry applier: the input is applied as a
 * layer tar into a fresh private dir, in overlay form and in flat form (over a first layer made
 * of the same input), inside a sandbox dir whose sibling must stay untouched. Nothing outside
 * the dir may change; a crash, a leak or a write outside is a finding. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

static char top[] = "/tmp/rbx-fuzz-tar.XXXXXX";
static char *sentinel;

static void apply(const unsigned char *data, size_t size, bool flat)
{
    _cleanup_free_ char *dir = rbx_xasprintf("%s/root", top);
    (void)rbx_rm_rf_at(AT_FDCWD, dir, NULL);
    if (mkdir(dir, 0700) < 0)
        abort();
    _cleanup_close_ int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct rbx_unpack_counts counts = {0};
    struct rbx_applier *ap = rbx_applier_new(rootfd, flat, &counts);
    for (int layer = 0; layer < (flat ? 2 : 1); layer++) {
        int fd = memfd_create("layer", MFD_CLOEXEC);
        if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) < 0)
            abort();
        /* A cap small enough that a bomb costs the fuzzer nothing. */
        struct rbx_stream *s =
            rbx_stream_new(fd, rbx_compression_sniff(data, size), NULL, -1, 8 << 20, "blob");
        struct rbx_error *err = NULL;
        int r = rbx_applier_layer(ap, s, "fuzz", NULL, &err);
        rbx_error_free(err);
        rbx_stream_free(s);
        if (r < 0)
            break;
    }
    struct rbx_error *err = NULL;
    (void)rbx_applier_finish(ap, &err);
    rbx_error_free(err);
    rbx_applier_free(ap);
    rbx_unpack_counts_clear(&counts);
    (void)rbx_rm_rf_at(AT_FDCWD, dir, NULL);
    struct stat st;
    if (stat(sentinel, &st) < 0 || st.st_size != 1 || st.st_nlink != 1)
        abort(); /* something reached outside the root */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (!mkdtemp(top))
        abort();
    sentinel = rbx_xasprintf("%s/sentinel", top);
    int fd = open(sentinel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "s", 1) != 1)
        abort();
    close(fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    apply(data, size, false);
    apply(data, size, true);
    return 0;
}
