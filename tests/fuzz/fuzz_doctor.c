/* fuzz_doctor.c — libFuzzer target for the parsers `reprobox doctor` runs on an image's files: the
 * input is split as a shell text (with and without arguments), scanned as JavaScript for the
 * modules it loads, and read as an ELF file. */
#include "recipes/doctor-internal.h"

#include <sys/mman.h>

static char *env[] = {"PATH=/usr/bin:/bin", "A=a b", "EMPTY=", "CMD=npx prisma", NULL};
static char *args[] = {"postgres", "-c", "x y", NULL};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct rbx_sh_script s;
    struct rbx_error *err = NULL;
    rbx_sh_parse((const char *)data, size, env, args, &s, &err);
    rbx_sh_script_clear(&s);
    err = rbx_error_free(err);
    rbx_sh_parse((const char *)data, size, NULL, NULL, &s, &err);
    rbx_sh_script_clear(&s);
    err = rbx_error_free(err);

    struct rbx_js_import *imp = NULL;
    size_t n = 0;
    rbx_js_imports((const char *)data, size, &imp, &n);
    rbx_js_imports_free(imp, n);

    int fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, data, size) == (ssize_t)size) {
            struct rbx_elf e;
            if (rbx_elf_read(fd, "fuzz", &e, &err) == 0)
                rbx_elf_clear(&e);
            rbx_error_free(err);
        }
        close(fd);
    }
    return 0;
}
