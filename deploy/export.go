package deploy

import (
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
)

// PublishHost is the address this host reaches the engine's published
// ports at: the engine's host for a tcp:// engine, else 127.0.0.1.
func PublishHost(cli *client.Client) string { return engine.PublishHost(cli) }

// Targets lists the listeners of a broker's mosquitto.conf among files, as
// this host reaches them through the ports sp publishes.
func Targets(files []generators.File, sp *Spec) []ProbeTarget { return probeTargets(files, sp) }

// Service returns the desired service of that name, or nil.
func (d *Desired) Service(name string) *Service { return d.service(name) }
