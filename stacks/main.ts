// The cdktf app of cdktf.json: `cdktf synth` writes both stacks; `cdktf diff mail-cluster`,
// `cdktf deploy web-server --skip-provider-lock` act on one. See README, "Stacks".
import { App } from 'cdktf';
import { MailClusterStack } from './src/mail-cluster.ts';
import { WebServerStack } from './src/web-server.ts';

const app = new App();
new MailClusterStack(app, 'mail-cluster');
new WebServerStack(app, 'web-server');
app.synth();
