/* net.c — the sandbox's network: with RBX_NETWORK_NONE a namespace of its own where only the
 * loopback device exists, brought up so that servers bound to 127.0.0.1 work. */
#include "sandbox/sandbox-internal.h"

#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int rbx_net_loopback_up(void)
{
    /* Runs in the child after pivot_root: no allocation. */
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    int r = 0;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        r = -errno;
    } else if (!(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            r = -errno;
    }
    close(s);
    return r;
}
