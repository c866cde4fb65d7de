<?php
/**
 * The settings page (WooCommerce > Bitrecs): the site key, the Bitrecs server, and "Connect to Bitrecs", which
 * starts the REST key request for this store at {server}/woocommerce/connect?store_url=….
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

	/**
	 * Register the admin hooks.
	 */
	public static function register() {
		add_action( 'admin_init', array( __CLASS__, 'register_settings' ) );
		add_action( 'admin_menu', array( __CLASS__, 'add_page' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( BITRECS_PLUGIN_FILE ), array( __CLASS__, 'action_links' ) );
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
		</div>
		<?php
	}
}
