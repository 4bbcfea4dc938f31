// The provider's configuration for one stack: which publisher keys it trusts and which storm
// controller runs its scaling groups. A stack has one; the other constructs find it with
// Storm.of(this) and make a default one when the stack has none, so a stack that needs
// neither keys nor a controller never mentions it.
import { Lazy, TerraformStack, Token } from 'cdktf';
import { Construct, type IConstruct } from 'constructs';
import { parsePublicKey, PublicKeyFormatError } from '../../provider/src/channel/signing.ts';
import { StormProvider } from './generated/provider/index.ts';
import { validateProps, type PropRule } from './validation.ts';

/** How the provider reaches the storm controller (`storm controller init` wrote these). */
export interface ControllerConnection {
  /** The controller's API, e.g. `https://10.0.0.5:8443`. */
  readonly url: string;
  /** The admin token (the `admin-token` file). Pass it from a variable or a secret, not a literal. */
  readonly token: string;
  /** The CA that issued the controller's certificate (its `ca.pem`). */
  readonly caPem: string;
}

export interface StormProps {
  /**
   * Publisher keys trusted for every channel, each the line `storm keygen` printed.
   * @default - only the keys the stack's Channels bring
   */
  readonly trustedKeys?: readonly string[];
  /**
   * Where images and channel feeds are cached (and the newest feed seen of each channel is remembered).
   * @default - `$STORM_CACHE_DIR`, else `~/.cache/storm`
   */
  readonly cacheDir?: string;
  /**
   * The storm controller, which runs scaling groups and powers servers handed to it.
   * @default - none: ScalingGroup and `power: 'controller'` cannot be used
   */
  readonly controller?: ControllerConnection;
}

/** Checks key lines as the provider will; `prop` names where they were given. */
export function keyRules(prop: string, keys: readonly string[]): PropRule[] {
  return keys.flatMap((line, i) => {
    if (Token.isUnresolved(line)) return [];
    try {
      parsePublicKey(line);
      return [];
    } catch (err) {
      if (err instanceof PublicKeyFormatError) return [{ failed: true, message: `${prop}[${i}]: ${err.message}. Use the line \`storm keygen\` printed (storm-ed25519 KEYID BASE64).` }];
      throw err;
    }
  });
}

export class Storm extends Construct {
  /** The stack's Storm; made with defaults (no keys, no controller) when the stack has none yet. */
  static of(scope: IConstruct): Storm {
    const stack = TerraformStack.of(scope);
    return Storm.find(stack) ?? new Storm(stack, 'storm');
  }

  private static find(stack: TerraformStack): Storm | undefined {
    return stack.node.findAll().find((c): c is Storm => c instanceof Storm);
  }

  readonly provider: StormProvider;
  readonly controller: ControllerConnection | undefined;
  private readonly keys: string[] = [];

  constructor(scope: Construct, id: string, props: StormProps = {}) {
    // Said before super(): a default Storm has the id 'storm', which the constructs library
    // would refuse first with a message that does not say what to do.
    const existing = Storm.find(TerraformStack.of(scope));
    if (existing) {
      throw new Error(
        `Storm "${[scope.node.path, id].filter(Boolean).join('/')}": this stack already has a Storm at ${existing.node.path} (storm constructs make a default one when they find none). ` +
          'Create new Storm(stack, ...) before any other storm construct in the stack.',
      );
    }
    super(scope, id);
    this.controller = props.controller;
    this.keys.push(...(props.trustedKeys ?? []));
    this.provider = new StormProvider(this, 'provider', {
      cacheDir: props.cacheDir,
      controller: props.controller,
      // Channels add their keys after this is made; the provider block reads the final list.
      trustedKeys: Lazy.listValue({ produce: () => (this.keys.length ? [...new Set(this.keys)] : undefined) }),
    });
    validateProps(this, `Storm "${this.node.path}"`, () => keyRules('trustedKeys', props.trustedKeys ?? []));
  }

  /** Adds publisher keys to the provider's trusted_keys (which trusts them for every channel). */
  trust(keys: readonly string[]): void {
    this.keys.push(...keys);
  }

  get trustedKeys(): readonly string[] {
    return [...new Set(this.keys)];
  }
}
