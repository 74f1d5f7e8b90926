package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
)

// Needs checks, without changing anything, what apply of p will need from
// the engine and its host: every image it does not build is on the engine,
// or the registry has it (apply pulls it); every port a new container
// publishes is free on the engine's host (a port the container being
// replaced holds is freed by the replacement). It returns one line per
// finding: what is missing, or an image apply will pull.
func Needs(ctx context.Context, cli *client.Client, d *Desired, o *Observed, p *Plan) []string {
	var out []string
	host := engine.PublishHost(cli)
	for _, op := range p.Ops {
		if op.Kind != KindContainer || (op.Action != Create && op.Action != Replace) {
			continue
		}
		s := d.Service(op.Service)
		if s == nil {
			continue
		}
		if ref := s.Spec.Image; s.Build == nil && o.Images[ref] == "" {
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			_, err := cli.DistributionInspect(dctx, ref, client.DistributionInspectOptions{})
			cancel()
			if err != nil {
				out = append(out, fmt.Sprintf("image %s is not on the Docker engine, and the registry cannot be asked for it (%v): apply would fail; docker load (or build) it first", ref, err))
			} else {
				out = append(out, fmt.Sprintf("image %s is not on the Docker engine; the registry has it: apply pulls it", ref))
			}
		}
		held := map[int]bool{}
		for _, c := range o.Containers {
			if c.ID == op.ContainerID && c.Spec != nil {
				for _, pt := range c.Spec.Ports {
					held[pt.Published] = true
				}
			}
		}
		for _, pt := range s.Spec.Ports {
			if held[pt.Published] {
				continue
			}
			if err := portFree(host, pt); err != nil {
				out = append(out, fmt.Sprintf("port %d on %s is in use (%v): the new container could not publish it; free it or choose another port in home.cue", pt.Published, orAll(pt.HostIP), err))
			}
		}
	}
	return out
}

func orAll(ip string) string {
	if ip == "" || ip == "0.0.0.0" {
		return "every address of the engine's host"
	}
	return ip
}

// portFree checks a published port on the engine's host: on this machine
// (a local engine) by binding it, as the engine will; on a remote engine's
// host by connecting to it (something that answers holds it).
func portFree(host string, pt Port) error {
	if pt.Protocol != "" && pt.Protocol != "tcp" {
		return nil
	}
	if host == "127.0.0.1" {
		l, err := net.Listen("tcp", net.JoinHostPort(pt.HostIP, strconv.Itoa(pt.Published)))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return errors.New("something on this host listens on it")
			}
			return err
		}
		return l.Close()
	}
	target := host
	if pt.HostIP != "" && pt.HostIP != "0.0.0.0" {
		target = pt.HostIP
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(target, strconv.Itoa(pt.Published)), time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	return errors.New("something on the engine's host answers on it")
}
