package app

import (
	"net"
	"os"
	"path/filepath"

	"github.com/livefeed/livefeed/serving"
)

// userPartitions is Config.ServingUsers with its defaults: the replica's
// share under DataDir/serving-users, and an advertised address made of
// the host name (when --http names no host) and --http's port.
func (a *App) userPartitions() serving.UserPartitions {
	up := a.cfg.ServingUsers
	if !up.Shared {
		return up
	}
	if up.Dir == "" {
		up.Dir = filepath.Join(a.cfg.DataDir, "serving-users")
	}
	if up.Advertise == "" {
		host, port, err := net.SplitHostPort(a.cfg.HTTPAddr)
		if err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host, _ = os.Hostname()
			}
			up.Advertise = "http://" + net.JoinHostPort(host, port)
		}
	}
	return up
}
