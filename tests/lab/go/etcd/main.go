// Command etcd runs the pinned etcd server (go install of etcd itself fails
// on its replace directives, so the lab links etcdmain through this wrapper).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
