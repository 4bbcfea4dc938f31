// storm's CDKTF constructs. L2 (written by hand): the classes below. L1 (generated from the
// provider's schema; one class per resource and data source): `l1`.
export { Storm, type StormProps, type ControllerConnection } from './storm.ts';
export { ApplianceServer, type ApplianceServerProps, type Bmc, type ServerPower, type Accelerator } from './appliance-server.ts';
export { Channel, type ChannelProps, type ApplianceFromChannelOptions } from './channel.ts';
export {
  ApplianceSource,
  type ApplianceImages,
  type ImageSource,
  type BaseImageSource,
  type DirectBoot,
  type ApplianceHardware,
  type BoundAppliance,
} from './appliance-source.ts';
export { LayeredAppliance, type LayeredApplianceProps } from './layered-appliance.ts';
export { Deployment, type DeploymentProps } from './deployment.ts';
export { ApplianceInstance, type ApplianceInstanceProps, type InstanceState } from './appliance-instance.ts';
export { Network, type NetworkProps, type DnsHost } from './network.ts';
export { ScalingGroup, type ScalingGroupProps, type HostPowerPolicy, type ReportedLoad, type Placement } from './scaling-group.ts';
export type { InstanceFile } from './files.ts';
export * as l1 from './generated/index.ts';
