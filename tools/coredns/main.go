// Command coredns is CoreDNS, pinned in go.mod, with only the plugins the local cluster's DNS uses
// (the kubernetes plugin for <svc>.<ns>.svc.cluster.local; bind, errors, cache, log, health, ready):
// upstream's own main (coredns.go) imports every plugin, cloud providers' included.
package main

import (
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
