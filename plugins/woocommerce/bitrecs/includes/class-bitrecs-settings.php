<?php
/**
 * The settings page (WooCommerce > Bitrecs): the site key, the Bitrecs server, "Connect to Bitrecs", which
 * starts the REST key request for this store at {server}/woocommerce/connect?store_url=…, and "Open Bitrecs
 * portal", which signs the merchant in to the portal through a signed, single-use link valid for 5 minutes.
 *
 * The link is signed with HMAC-SHA256 under the consumer secret of the REST key the merchant approved on connect
 * (WooCommerce keeps it in its api_keys table; Bitrecs holds the same secret), over
 * "bitrecs-portal-signin\n{store_url}\n{key_id}\n{expires}\n{nonce}". It is made when the button is clicked
 * (admin-post.php?action=bitrecs_portal), so the 5 minutes start then.
 *
 * @package Bitrecs
 */

defined( 'ABSPATH' ) || exit;

/**
 * Options and the admin page.
 */
final class Bitrecs_Settings {

	const OPTION_SITE_KEY = 'bitrecs_site_key';
	const OPTION_API_BASE = 'bitrecs_api_base';
	const DEFAULT_API_BASE = 'https://app.bitrecs.ai';
	const PAGE_SLUG        = 'bitrecs';
	const PORTAL_ACTION    = 'bitrecs_portal';
	const LINK_LIFETIME    = 300;
	const APP_NAME         = 'Bitrecs';

	/**
	 * Register the admin hooks.
	 */
	public static function register() {
		add_action( 'admin_init', array( __CLASS__, 'register_settings' ) );
		add_action( 'admin_menu', array( __CLASS__, 'add_page' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( BITRECS_PLUGIN_FILE ), array( __CLASS__, 'action_links' ) );
		add_action( 'admin_post_' . self::PORTAL_ACTION, array( __CLASS__, 'open_portal' ) );
	}

	/**
	 * The store's public site key ('' until the merchant sets it).
	 *
	 * @return string
	 */
	public static function site_key() {
		return self::clean_site_key( get_option( self::OPTION_SITE_KEY, '' ) );
	}

	/**
	 * The Bitrecs server the widget talks to, without a trailing slash.
	 *
	 * @return string
	 */
	public static function api_base() {
		$value = self::clean_api_base( get_option( self::OPTION_API_BASE, self::DEFAULT_API_BASE ) );
		return '' !== $value ? $value : self::DEFAULT_API_BASE;
	}

	/**
	 * A site key as Bitrecs issues them (letters, digits, "_" and "-", at most 64), or ''.
	 *
	 * @param mixed $value Untrusted input.
	 * @return string
	 */
	public static function clean_site_key( $value ) {
		$value = is_string( $value ) ? trim( $value ) : '';
		return preg_match( '/^[A-Za-z0-9_-]{1,64}$/', $value ) ? $value : '';
	}

	/**
	 * An http(s) base URL without a trailing slash, or ''.
	 *
	 * @param mixed $value Untrusted input.
	 * @return string
	 */
	public static function clean_api_base( $value ) {
		$value = is_string( $value ) ? trim( $value ) : '';
		if ( ! preg_match( '#^https?://[^\s/?\#]+(/[^\s?\#]*)?$#', $value ) ) {
			return '';
		}
		return rtrim( $value, '/' );
	}

	/**
	 * The URL that starts the key request for this store on the Bitrecs server.
	 *
	 * @return string
	 */
	public static function connect_url() {
		return self::api_base() . '/woocommerce/connect?store_url=' . rawurlencode( untrailingslashit( home_url() ) );
	}

	/**
	 * The REST key Bitrecs was given on connect: the newest key WooCommerce made for the "Bitrecs" app.
	 *
	 * WC_Auth names a key "{app name} - API ({date})"; Bitrecs keeps only the last key it received.
	 *
	 * @return array{key_id: string, consumer_secret: string}|null
	 */
	public static function connected_key() {
		global $wpdb;
		if ( ! isset( $wpdb ) ) {
			return null;
		}
		$suppress = $wpdb->suppress_errors(); // no WooCommerce, no api_keys table: no key, and no error shown.
		$row      = $wpdb->get_row(
			$wpdb->prepare(
				"SELECT key_id, consumer_secret FROM {$wpdb->prefix}woocommerce_api_keys WHERE description LIKE %s ORDER BY key_id DESC LIMIT 1",
				$wpdb->esc_like( self::APP_NAME . ' - API' ) . '%'
			),
			ARRAY_A
		);
		$wpdb->suppress_errors( $suppress );
		if ( ! is_array( $row ) || ! preg_match( '/^cs_[0-9a-f]{40}$/', (string) $row['consumer_secret'] ) ) {
			return null;
		}
		return array(
			'key_id'          => (string) (int) $row['key_id'],
			'consumer_secret' => (string) $row['consumer_secret'],
		);
	}

	/**
	 * The text a sign-in link's signature covers (Bitrecs checks the same).
	 *
	 * @param string $store_url This store's base URL.
	 * @param string $key_id    The REST key's id.
	 * @param int    $expires   Unix time the link stops working.
	 * @param string $nonce     A random, single-use value.
	 * @return string
	 */
	public static function signin_message( $store_url, $key_id, $expires, $nonce ) {
		return "bitrecs-portal-signin\n{$store_url}\n{$key_id}\n{$expires}\n{$nonce}";
	}

	/**
	 * A signed portal sign-in link for this store, or '' when the store is not connected.
	 *
	 * @param int|null    $now   Unix time (tests pass one; else the clock).
	 * @param string|null $nonce The link's nonce (tests pass one; else 32 random hex characters).
	 * @return string
	 */
	public static function portal_signin_url( $now = null, $nonce = null ) {
		$key = self::connected_key();
		if ( null === $key ) {
			return '';
		}
		$store_url = untrailingslashit( home_url() );
		$expires   = ( null === $now ? time() : (int) $now ) + self::LINK_LIFETIME;
		$nonce     = null === $nonce ? bin2hex( random_bytes( 16 ) ) : (string) $nonce;
		$signature = hash_hmac( 'sha256', self::signin_message( $store_url, $key['key_id'], $expires, $nonce ), $key['consumer_secret'] );
		return self::api_base() . '/portal/woocommerce/signin?' . http_build_query(
			array(
				'store_url' => $store_url,
				'key_id'    => $key['key_id'],
				'expires'   => $expires,
				'nonce'     => $nonce,
				'signature' => $signature,
			),
			'',
			'&',
			PHP_QUERY_RFC3986
		);
	}

	/**
	 * The settings page's "Open Bitrecs portal" button: a nonce-protected admin-post URL (the link is made on click).
	 *
	 * @return string
	 */
	public static function open_portal_url() {
		return wp_nonce_url( admin_url( 'admin-post.php?action=' . self::PORTAL_ACTION ), self::PORTAL_ACTION );
	}

	/**
	 * admin-post.php?action=bitrecs_portal: an administrator's click, sent on to a fresh signed sign-in link.
	 */
	public static function open_portal() {
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'You are not allowed to open the Bitrecs portal.', 'bitrecs' ), '', array( 'response' => 403 ) );
			return;
		}
		check_admin_referer( self::PORTAL_ACTION );
		$url = self::portal_signin_url();
		if ( '' === $url ) {
			wp_die( esc_html__( 'Connect your store to Bitrecs first (WooCommerce > Bitrecs > Connect to Bitrecs).', 'bitrecs' ), '', array( 'response' => 409 ) );
			return;
		}
		wp_redirect( $url ); // phpcs:ignore WordPress.Security.SafeRedirect.wp_redirect_wp_redirect -- the Bitrecs server.
		exit;
	}

	/**
	 * Register the two options with their sanitisers.
	 */
	public static function register_settings() {
		register_setting(
			self::PAGE_SLUG,
			self::OPTION_SITE_KEY,
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'clean_site_key' ),
				'default'           => '',
			)
		);
		register_setting(
			self::PAGE_SLUG,
			self::OPTION_API_BASE,
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'clean_api_base' ),
				'default'           => self::DEFAULT_API_BASE,
			)
		);
	}

	/**
	 * WooCommerce > Bitrecs (Settings > Bitrecs without WooCommerce).
	 */
	public static function add_page() {
		$parent = class_exists( 'WooCommerce' ) ? 'woocommerce' : 'options-general.php';
		add_submenu_page( $parent, 'Bitrecs', 'Bitrecs', 'manage_options', self::PAGE_SLUG, array( __CLASS__, 'render_page' ) );
	}

	/**
	 * A "Settings" link on the plugins screen.
	 *
	 * @param string[] $links Existing links.
	 * @return string[]
	 */
	public static function action_links( $links ) {
		$parent = class_exists( 'WooCommerce' ) ? 'admin.php' : 'options-general.php';
		array_unshift( $links, sprintf( '<a href="%s">%s</a>', esc_url( admin_url( $parent . '?page=' . self::PAGE_SLUG ) ), esc_html__( 'Settings', 'bitrecs' ) ) );
		return $links;
	}

	/**
	 * The settings page.
	 */
	public static function render_page() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$site_key = self::site_key();
		?>
		<div class="wrap">
			<h1><?php esc_html_e( 'Bitrecs recommendations', 'bitrecs' ); ?></h1>
			<h2><?php esc_html_e( '1. Connect your store', 'bitrecs' ); ?></h2>
			<p><?php esc_html_e( 'Bitrecs reads your catalog and anonymous order lines through a read-only WooCommerce REST key. Connecting asks you to approve that key, then shows your site key.', 'bitrecs' ); ?></p>
			<p><a class="button button-primary" id="bitrecs-connect" href="<?php echo esc_url( self::connect_url() ); ?>"><?php esc_html_e( 'Connect to Bitrecs', 'bitrecs' ); ?></a></p>
			<h2><?php esc_html_e( '2. Your site key', 'bitrecs' ); ?></h2>
			<form method="post" action="options.php">
				<?php settings_fields( self::PAGE_SLUG ); ?>
				<table class="form-table" role="presentation">
					<tr>
						<th scope="row"><label for="bitrecs_site_key"><?php esc_html_e( 'Site key', 'bitrecs' ); ?></label></th>
						<td><input name="<?php echo esc_attr( self::OPTION_SITE_KEY ); ?>" id="bitrecs_site_key" type="text" class="regular-text" value="<?php echo esc_attr( $site_key ); ?>" /></td>
					</tr>
					<tr>
						<th scope="row"><label for="bitrecs_api_base"><?php esc_html_e( 'Bitrecs server', 'bitrecs' ); ?></label></th>
						<td><input name="<?php echo esc_attr( self::OPTION_API_BASE ); ?>" id="bitrecs_api_base" type="url" class="regular-text" value="<?php echo esc_attr( self::api_base() ); ?>" /></td>
					</tr>
				</table>
				<?php submit_button(); ?>
			</form>
			<h2><?php esc_html_e( '3. Place recommendations', 'bitrecs' ); ?></h2>
			<p><?php esc_html_e( 'Add the "Bitrecs recommendations" block to a product, cart or home template, or the shortcode [bitrecs placement="product"] (placement: product, cart or home; limit: how many products).', 'bitrecs' ); ?></p>
			<?php if ( '' === $site_key ) : ?>
				<p><strong><?php esc_html_e( 'The widget stays off until a site key is saved.', 'bitrecs' ); ?></strong></p>
			<?php endif; ?>
			<h2><?php esc_html_e( '4. See what Bitrecs sells', 'bitrecs' ); ?></h2>
			<p><?php esc_html_e( 'The Bitrecs portal shows the sales recommendations bring, lets you set rules and run tests. The button signs you in with a link that works once, for 5 minutes.', 'bitrecs' ); ?></p>
			<?php if ( null === self::connected_key() ) : ?>
				<p><?php esc_html_e( 'Connect your store first (step 1).', 'bitrecs' ); ?></p>
			<?php else : ?>
				<p><a class="button" id="bitrecs-portal" target="_blank" rel="noopener noreferrer" href="<?php echo esc_url( self::open_portal_url() ); ?>"><?php esc_html_e( 'Open Bitrecs portal', 'bitrecs' ); ?></a></p>
			<?php endif; ?>
		</div>
		<?php
	}
}
