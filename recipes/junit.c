/* junit.c — JUnit XML for CI dashboards: one <testcase> per recipe, a <failure> with the first
 * unmet expectation and the summary, an <error> when reprobox could not replay it. */
#include "recipes/recipes.h"

#include <string.h>

/* XML 1.0 text: escape markup, drop the control characters XML can not carry. */
static void xml_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if (*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r')
                fputc('?', f);
            else
                fputc(*p, f);
        }
    }
}

char *rbx_junit_xml(const char *suite, const struct rbx_junit_case *cases, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    size_t failures = 0, errors = 0;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        failures += !cases[i].passed && !cases[i].errored;
        errors += cases[i].errored;
        total += cases[i].seconds;
    }
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"", f);
    xml_text(f, suite);
    fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"0\" time=\"%.3f\">\n", n,
            failures, errors, total);
    for (size_t i = 0; i < n; i++) {
        const struct rbx_junit_case *c = &cases[i];
        fputs("    <testcase classname=\"", f);
        xml_text(f, suite);
        fputs("\" name=\"", f);
        xml_text(f, c->name);
        fputs("\" file=\"", f);
        xml_text(f, c->file);
        fprintf(f, "\" time=\"%.3f\"", c->seconds);
        if (c->passed) {
            fputs("/>\n", f);
            continue;
        }
        fputs(">\n      <", f);
        fputs(c->errored ? "error" : "failure", f);
        fputs(" message=\"", f);
        xml_text(f, c->message);
        fputs("\">", f);
        xml_text(f, c->detail);
        fprintf(f, "</%s>\n    </testcase>\n", c->errored ? "error" : "failure");
    }
    fputs("  </testsuite>\n</testsuites>\n", f);
    fclose(f);
    return buf;
}
