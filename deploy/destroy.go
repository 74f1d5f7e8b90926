package deploy

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"
)

// PlanDestroy plans the removal of the project: its containers and
// networks, and its volumes (the broker's persisted messages and logs) only
// when volumes is true.
func PlanDestroy(o *Observed, volumes bool) *Plan {
	p := &Plan{Project: o.Project, Fingerprint: o.Fingerprint()}
	for _, c := range o.Containers {
		p.Ops = append(p.Ops, Op{Action: Delete, Kind: KindContainer, Name: c.Name, Service: c.Service, ContainerID: c.ID,
			Reasons: []string{"destroy removes the project's containers"}})
	}
	for _, n := range o.Networks {
		p.Ops = append(p.Ops, Op{Action: Delete, Kind: KindNetwork, Name: n.Name, Reasons: []string{"destroy removes the project's networks"}})
	}
	if volumes {
		for _, v := range o.Volumes {
			p.Ops = append(p.Ops, Op{Action: Delete, Kind: KindVolume, Name: v.Name,
				Reasons: []string{fmt.Sprintf("--volumes: volume %s and what it holds are deleted", orUnknown(v.Key))}})
		}
	}
	return p
}

// Destroy executes a plan of PlanDestroy.
func Destroy(ctx context.Context, cli *client.Client, o *Observed, p *Plan, opts Options) error {
	return Apply(ctx, cli, &Desired{Project: o.Project}, o, p, opts)
}
